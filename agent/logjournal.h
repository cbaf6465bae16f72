/*
 * logjournal.h: ACTION_READ_LOG for a service the systemd driver runs: its
 * output is in the journal (entries with _SYSTEMD_UNIT=its unit), not in
 * LOG_DIR. Read in-process with sd-journal (libsystemd), with logread's
 * limits and answer (struct logread): the last `lines` entries, one line
 * each (MESSAGE), at most LOGREAD_BYTES_MAX or the request's max_bytes,
 * the newest kept when cut; and a read stops after LOGJOURNAL_TIME_MS.
 *
 * The offset of a journal answer is not a byte position: it is the
 * journal's wall-clock timestamp (microseconds) just after the newest entry
 * returned (0 when there is none yet), and from_offset asks for the entries
 * at or after it. A follower passes it back as it would a file's.
 */
#ifndef DRV_LOGJOURNAL_H
#define DRV_LOGJOURNAL_H

#include <stddef.h>

#include "drover.pb-c.h"
#include "logread.h"

#define LOGJOURNAL_TIME_MS 2000

/* Read what rq asks (capped) from the journal of unit ("drover-web.service").
 * out->instance is the unit. DRV_EIO with why when the journal cannot be
 * opened. On success the caller frees out->text. */
int logjournal_read(const char *unit, const Drover__LogRequest *rq, struct logread *out, char *why,
                    size_t why_cap);

/* The unit's last lines on one line (as logread_tail_line). */
void logjournal_tail_line(const char *unit, size_t lines, char *out, size_t max);

#endif
