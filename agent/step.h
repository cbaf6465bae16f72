/*
 * step.h: the outcome of one instruction, as the action handlers fill it in
 * and the executor reports it.
 */
#ifndef DRV_AGENT_STEP_H
#define DRV_AGENT_STEP_H

#include <stdbool.h>

#include "proc.h"

#define STEP_MSG_MAX 1024

struct step_outcome {
	bool ok;
	int exit_code;
	char message[STEP_MSG_MAX];
	char tail[PROC_TAIL_MAX + 1];
	/* Image blobs the step needed (Report.pulled_bytes, cached_bytes). */
	unsigned long long pulled_bytes, cached_bytes;
};

/* Set ok = false and a printf-formatted message. Returns DRV_OK so handlers
 * can `return step_fail(...)`: a failed step is a result, not an error. */
__attribute__((format(printf, 2, 3))) int step_fail(struct step_outcome *o, const char *fmt, ...);
/* Set ok = true and the message. */
__attribute__((format(printf, 2, 3))) int step_ok(struct step_outcome *o, const char *fmt, ...);

/* Only [A-Za-z0-9._-], 1..64 characters, not "." or "..": safe in a path. */
bool step_name_ok(const char *name);

#endif
