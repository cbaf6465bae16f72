/* logread.c: tails of the services' log files (see logread.h). */
#include "logread.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "step.h"

/* path of instance's log; false when the name is unsafe. */
static bool log_file(const char *log_dir, const char *instance, char *path, size_t cap)
{
	int n = snprintf(path, cap, "%s/services/%s.log", log_dir, instance);

	return n > 0 && (size_t)n < cap;
}

/* "svc" when svc.log exists, else the newest "svc@SLOT". */
static int pick_instance(const char *log_dir, const char *service, const char *slot, char *out,
                         size_t cap)
{
	char dir[4200], path[4400];
	struct stat st;
	int64_t best = -1;
	struct dirent *de;
	size_t n = strlen(service);
	DIR *d;

	if (slot != NULL && slot[0] != '\0') {
		snprintf(out, cap, "%s@%s", service, slot);
		return DRV_OK;
	}
	snprintf(out, cap, "%s", service);
	if (log_file(log_dir, out, path, sizeof(path)) && stat(path, &st) == 0)
		return DRV_OK;
	snprintf(dir, sizeof(dir), "%s/services", log_dir);
	d = opendir(dir);
	if (d == NULL)
		return DRV_ENOENT;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (strncmp(de->d_name, service, n) != 0 || de->d_name[n] != '@' || len < n + 6 ||
		    strcmp(de->d_name + len - 4, ".log") != 0)
			continue;
		int w = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);

		if (w < 0 || (size_t)w >= sizeof(path)) /* a name too long for a path: not ours */
			continue;
		if (stat(path, &st) != 0 || (int64_t)st.st_mtime <= best)
			continue;
		best = (int64_t)st.st_mtime;
		snprintf(out, cap, "%.*s", (int)(len - 4), de->d_name);
	}
	closedir(d);
	return best >= 0 ? DRV_OK : DRV_ENOENT;
}

/* Read [from, size) of fd, at most cap bytes (the last cap). */
static int read_range(int fd, uint64_t from, uint64_t size, size_t cap, struct logread *out)
{
	uint64_t want = size - from;
	ssize_t got;

	if (want > cap) {
		from = size - cap;
		want = cap;
		out->truncated = true;
	}
	out->text = malloc(want ? (size_t)want : 1);
	if (out->text == NULL)
		return DRV_ENOMEM;
	got = pread(fd, out->text, (size_t)want, (off_t)from);
	out->len = got > 0 ? (size_t)got : 0;
	out->offset = from + out->len;
	return DRV_OK;
}

/* Keep the last `lines` lines of out->text. */
static void keep_lines(struct logread *out, uint32_t lines)
{
	size_t n = out->len, seen = 0, i;

	if (n > 0 && out->text[n - 1] == '\n')
		n--; /* the final newline ends the last line */
	for (i = n; i > 0; i--) {
		if (out->text[i - 1] == '\n' && ++seen == lines)
			break;
	}
	if (i > 0) {
		memmove(out->text, out->text + i, out->len - i);
		out->len -= i;
		out->truncated = true;
	}
}

size_t logread_cap(const Drover__LogRequest *rq)
{
	return rq->max_bytes > 0 && rq->max_bytes < LOGREAD_BYTES_MAX ? rq->max_bytes
	                                                              : LOGREAD_BYTES_MAX;
}

uint32_t logread_lines(const Drover__LogRequest *rq)
{
	return rq->lines > 0 && rq->lines <= LOGREAD_LINES_MAX ? rq->lines : LOGREAD_LINES_DEFAULT;
}

int logread_read(const char *log_dir, const Drover__LogRequest *rq, struct logread *out, char *why,
                 size_t why_cap)
{
	char path[4400];
	struct stat st;
	size_t cap = logread_cap(rq);
	uint32_t lines = logread_lines(rq);
	uint64_t from;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	if (!step_name_ok(rq->service) || (rq->slot[0] != '\0' && !step_name_ok(rq->slot)))
		return snprintf(why, why_cap, "bad service or slot name"), DRV_EINVAL;
	if (pick_instance(log_dir, rq->service, rq->slot, out->instance, sizeof(out->instance)) !=
	            DRV_OK ||
	    !log_file(log_dir, out->instance, path, sizeof(path)))
		return snprintf(why, why_cap, "no output of %s on this host", rq->service),
		       DRV_ENOENT;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(why, why_cap, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return DRV_ENOENT;
	}
	from = 0;
	if (rq->from_offset && rq->offset <= (uint64_t)st.st_size)
		from = rq->offset;
	else if (rq->from_offset)
		out->rotated = true; /* shorter than before: start it again */
	else
		from = (uint64_t)st.st_size > cap ? (uint64_t)st.st_size - cap : 0;
	rc = read_range(fd, from, (uint64_t)st.st_size, cap, out);
	close(fd);
	if (!rq->from_offset && from > 0)
		out->truncated = true; /* older output is there */
	if (rc == DRV_OK && !rq->from_offset)
		keep_lines(out, lines);
	return rc;
}

void logread_join(const struct logread *lr, char *out, size_t max)
{
	char *joined;
	size_t o = 0;

	out[0] = '\0';
	if (max == 0)
		return;
	joined = malloc(lr->len * 3 + 1);
	if (joined == NULL)
		return;
	for (size_t i = 0; i < lr->len; i++) {
		unsigned char c = (unsigned char)lr->text[i];

		if (c == '\n') {
			if (i + 1 < lr->len) {
				memcpy(joined + o, " | ", 3);
				o += 3;
			}
			continue;
		}
		joined[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	joined[o] = '\0';
	/* The newest output matters: keep the end, marked when cut. */
	if (o + 1 > max && max > 4)
		snprintf(out, max, "...%s", joined + o - (max - 4));
	else
		snprintf(out, max, "%s", joined);
	free(joined);
}

void logread_tail_line(const char *log_dir, const char *instance, size_t lines, char *out,
                       size_t max)
{
	Drover__LogRequest rq = DROVER__LOG_REQUEST__INIT;
	char why[200], name[160], *at;
	struct logread lr;

	out[0] = '\0';
	if (max == 0)
		return;
	snprintf(name, sizeof(name), "%s", instance);
	at = strchr(name, '@');
	if (at != NULL)
		*at++ = '\0';
	rq.service = name;
	rq.slot = at != NULL ? at : "";
	rq.lines = (uint32_t)lines;
	rq.max_bytes = 4096;
	if (logread_read(log_dir, &rq, &lr, why, sizeof(why)) != DRV_OK)
		return;
	logread_join(&lr, out, max);
	free(lr.text);
}
