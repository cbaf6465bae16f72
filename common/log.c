/*
 * log.c: the logger. One lock around the output so lines from several
 * threads never interleave; the level is read without it.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"

static enum drv_log_level log_level = DRV_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file;
static char *log_path;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void drv_log_set_level(enum drv_log_level level)
{
	log_level = level;
}

int drv_log_parse_level(const char *name, enum drv_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum drv_log_level)i;
			return DRV_OK;
		}
	}
	return DRV_EINVAL;
}

static int open_locked(void)
{
	FILE *f = fopen(log_path, "ae");

	if (f == NULL)
		return DRV_EIO;
	setvbuf(f, NULL, _IOLBF, 0);
	if (log_file != NULL)
		fclose(log_file);
	log_file = f;
	return DRV_OK;
}

int drv_log_open(const char *path)
{
	int rc = DRV_OK;

	pthread_mutex_lock(&log_lock);
	free(log_path);
	log_path = NULL;
	if (log_file != NULL) {
		fclose(log_file);
		log_file = NULL;
	}
	if (path != NULL) {
		log_path = strdup(path);
		rc = log_path == NULL ? DRV_ENOMEM : open_locked();
	}
	pthread_mutex_unlock(&log_lock);
	return rc;
}

int drv_log_reopen(void)
{
	int rc = DRV_OK;

	pthread_mutex_lock(&log_lock);
	if (log_path != NULL)
		rc = open_locked();
	pthread_mutex_unlock(&log_lock);
	return rc;
}

void drv_log_close(void)
{
	drv_log_open(NULL);
}

/* Copy msg into buf as a quoted value, escaping quotes and control bytes. */
static size_t quote(char *buf, size_t cap, const char *msg)
{
	size_t n = 0;

	if (cap < 3)
		return 0;
	buf[n++] = '"';
	for (; *msg != '\0' && n + 3 < cap; msg++) {
		unsigned char c = (unsigned char)*msg;
		if (c == '"' || c == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)c;
		} else {
			buf[n++] = c < 0x20 ? ' ' : (char)c;
		}
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return n;
}

void drv_log(enum drv_log_level level, const char *mod, const char *msg, const char *kvfmt, ...)
{
	char line[DRV_LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	if (level < log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n,
	                      ".%03ldZ level=%s mod=%s msg=", ts.tv_nsec / 1000000,
	                      level_names[level], mod);
	n += quote(line + n, sizeof(line) - n, msg);
	if (kvfmt != NULL && kvfmt[0] != '\0' && n + 2 < sizeof(line)) {
		line[n++] = ' ';
		va_start(ap, kvfmt);
		int w = vsnprintf(line + n, sizeof(line) - n, kvfmt, ap);
		va_end(ap);
		if (w > 0)
			n += (size_t)w < sizeof(line) - n ? (size_t)w : sizeof(line) - n - 1;
	}
	pthread_mutex_lock(&log_lock);
	fprintf(log_file != NULL ? log_file : stderr, "%s\n", line);
	pthread_mutex_unlock(&log_lock);
}
