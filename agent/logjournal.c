/* logjournal.c: a systemd unit's output from the journal (see logjournal.h). */
#include "logjournal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>

#include "clock.h"
#include "err.h"

#define FIELD "MESSAGE="

/* The entries read, newest first, their text packed in one buffer. */
struct entries {
	char *buf; /* cap bytes */
	size_t used, cap;
	size_t *off, *len; /* per entry */
	size_t n, max;
	uint64_t newest_usec;
	bool truncated;
};

/* Add the current entry's MESSAGE; false when it does not fit (the caller
 * stops there). The newest entry alone may be cut to its end. */
static bool add_entry(sd_journal *j, struct entries *e)
{
	const void *d;
	size_t l, need;
	const char *msg;

	if (sd_journal_get_data(j, "MESSAGE", &d, &l) < 0 || l < sizeof(FIELD) - 1)
		return true; /* no text: nothing to show */
	msg = (const char *)d + sizeof(FIELD) - 1;
	l -= sizeof(FIELD) - 1;
	need = l + 1;
	if (e->used + need > e->cap) {
		if (e->n > 0)
			return false;
		msg += need - e->cap; /* the newest entry alone: keep its end */
		l = e->cap - 1;
		e->truncated = true;
	}
	memcpy(e->buf + e->used, msg, l);
	e->buf[e->used + l] = '\n';
	e->off[e->n] = e->used;
	e->len[e->n] = l + 1;
	e->used += l + 1;
	e->n++;
	return true;
}

/* Walk back from the newest entry of unit until the limits or from_usec. */
static int collect(sd_journal *j, const Drover__LogRequest *rq, struct entries *e)
{
	int64_t until = drv_mono_ms() + LOGJOURNAL_TIME_MS;
	uint64_t usec;
	int r;

	if (sd_journal_seek_tail(j) < 0)
		return DRV_EIO;
	while ((r = sd_journal_previous(j)) > 0) {
		if (sd_journal_get_realtime_usec(j, &usec) < 0)
			continue;
		if (rq->from_offset && usec < rq->offset)
			break; /* read before */
		if (e->n == e->max || drv_mono_ms() > until || !add_entry(j, e)) {
			e->truncated = true;
			break;
		}
		if (e->n == 1 && e->newest_usec == 0)
			e->newest_usec = usec;
	}
	return r < 0 && e->n == 0 ? DRV_EIO : DRV_OK;
}

/* out->text: the entries oldest first. */
static int assemble(struct entries *e, const Drover__LogRequest *rq, struct logread *out)
{
	size_t o = 0;

	out->text = malloc(e->used ? e->used : 1);
	if (out->text == NULL)
		return DRV_ENOMEM;
	for (size_t i = e->n; i > 0; i--) {
		memcpy(out->text + o, e->buf + e->off[i - 1], e->len[i - 1]);
		o += e->len[i - 1];
	}
	out->len = o;
	out->truncated = e->truncated;
	out->offset = e->n > 0 ? e->newest_usec + 1 : (rq->from_offset ? rq->offset : 0);
	return DRV_OK;
}

int logjournal_read(const char *unit, const Drover__LogRequest *rq, struct logread *out, char *why,
                    size_t why_cap)
{
	size_t cap = logread_cap(rq);
	struct entries e = {.cap = cap,
	                    .max = rq->from_offset ? LOGREAD_LINES_MAX : logread_lines(rq)};
	char match[200];
	sd_journal *j = NULL;
	int r, rc;

	memset(out, 0, sizeof(*out));
	snprintf(out->instance, sizeof(out->instance), "%s", unit);
	if (snprintf(match, sizeof(match), "_SYSTEMD_UNIT=%s", unit) >= (int)sizeof(match))
		return snprintf(why, why_cap, "unit name too long"), DRV_EINVAL;
	/* every local journal: a service's user may have one of its own */
	r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
	if (r < 0)
		return snprintf(why, why_cap, "cannot open the journal: %s", strerror(-r)), DRV_EIO;
	e.buf = malloc(cap);
	e.off = calloc(e.max, sizeof(*e.off));
	e.len = calloc(e.max, sizeof(*e.len));
	rc = e.buf && e.off && e.len ? DRV_OK : DRV_ENOMEM;
	if (rc == DRV_OK && (sd_journal_set_data_threshold(j, cap + sizeof(FIELD)) < 0 ||
	                     sd_journal_add_match(j, match, 0) < 0))
		rc = DRV_EIO;
	if (rc == DRV_OK)
		rc = collect(j, rq, &e);
	if (rc == DRV_OK)
		rc = assemble(&e, rq, out);
	else
		snprintf(why, why_cap, "cannot read the journal of %s: %s", unit, drv_strerror(rc));
	sd_journal_close(j);
	free(e.buf);
	free(e.off);
	free(e.len);
	return rc;
}

void logjournal_tail_line(const char *unit, size_t lines, char *out, size_t max)
{
	Drover__LogRequest rq = DROVER__LOG_REQUEST__INIT;
	struct logread lr;
	char why[200];

	out[0] = '\0';
	rq.lines = (uint32_t)lines;
	rq.max_bytes = 4096;
	if (logjournal_read(unit, &rq, &lr, why, sizeof(why)) != DRV_OK)
		return;
	logread_join(&lr, out, max);
	free(lr.text);
}
