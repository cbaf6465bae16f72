/*
 * logread.h: ACTION_READ_LOG, the tail of a service's own output from
 * LOG_DIR/services/<instance>.log (the exec driver writes it, and rotates
 * it by size into .1 ... .N), for `drover logs` and for failure reasons.
 * Services of the systemd driver log to the journal: logjournal.h reads
 * it into the same answer.
 */
#ifndef DRV_LOGREAD_H
#define DRV_LOGREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover.pb-c.h"

#define LOGREAD_BYTES_MAX     (64u << 10) /* an answer's text at most */
#define LOGREAD_LINES_MAX     10000
#define LOGREAD_LINES_DEFAULT 100

struct logread {
	char instance[160]; /* the file's instance name ("svc" or "svc@slot") */
	char *text;         /* malloc'd, len bytes (not NUL-terminated for callers) */
	size_t len;
	uint64_t offset; /* the file's size after text */
	bool truncated, rotated;
};

/* What rq may have: its max_bytes within LOGREAD_BYTES_MAX (0: the cap),
 * its lines within 1..LOGREAD_LINES_MAX (else LOGREAD_LINES_DEFAULT). */
size_t logread_cap(const Drover__LogRequest *rq);
uint32_t logread_lines(const Drover__LogRequest *rq);

/* Read what rq asks (capped) from log_dir. DRV_ENOENT with why when the
 * service has no log file here; DRV_EINVAL for a bad name. On success the
 * caller frees out->text. */
int logread_read(const char *log_dir, const Drover__LogRequest *rq, struct logread *out, char *why,
                 size_t why_cap);

/* lr's text on one line, lines joined by " | ", control characters as '?',
 * at most max bytes (the end kept, "..." in front when cut). */
void logread_join(const struct logread *lr, char *out, size_t max);

/* The last lines of instance's log, at most max bytes, on one line each
 * joined by " | " (for a failure reason): "" when there is none. */
void logread_tail_line(const char *log_dir, const char *instance, size_t lines, char *out,
                       size_t max);

#endif
