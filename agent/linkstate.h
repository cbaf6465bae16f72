/*
 * linkstate.h: what the agent's link must remember across restarts, in one
 * small JSON file written atomically (atomicfile.h):
 *
 *   - applied_seq: the highest instruction sequence number applied. It is
 *     saved BEFORE an instruction is handed to the executor, so a crash
 *     can never let the same sequence number run twice;
 *   - report_seq_reserved: report sequence numbers are reserved in blocks,
 *     so a restarted agent never reuses one the coordinator has seen;
 *   - the last LINKSTATE_STEPS_MAX step ids with their sequence and result,
 *     so a resent step is acknowledged (and its result repeated) without
 *     being executed again.
 *
 * Pure data and (de)serialization; the caller locks.
 */
#ifndef DRV_LINKSTATE_H
#define DRV_LINKSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "drover.pb-c.h"

#define LINKSTATE_STEPS_MAX   256
#define LINKSTATE_STEP_ID_MAX 200
#define LINKSTATE_MESSAGE_MAX 200
#define LINKSTATE_FILE_MAX    (512u << 10)

struct linkstate_step {
	uint64_t seq;
	char step_id[LINKSTATE_STEP_ID_MAX + 1];
	char deployment_id[LINKSTATE_STEP_ID_MAX + 1];
	Drover__StepResult result; /* ACCEPTED until the executor says more */
	int32_t exit_code;
	char message[LINKSTATE_MESSAGE_MAX + 1];
};

struct linkstate {
	uint64_t applied_seq;
	uint64_t report_seq_reserved;
	size_t n_steps; /* oldest first */
	struct linkstate_step steps[LINKSTATE_STEPS_MAX];
};

/* A missing file is a fresh state (DRV_OK, all zero). */
int linkstate_load(const char *path, struct linkstate *out);
/* The decoder behind linkstate_load (fuzzed). */
int linkstate_parse(const char *buf, size_t len, struct linkstate *out);
int linkstate_save(const char *path, const struct linkstate *st);

/* NULL if the step id is not among the remembered ones. */
struct linkstate_step *linkstate_find(struct linkstate *st, const char *step_id);
/* Record a step's outcome (message cut to fit). */
void linkstate_set_result(struct linkstate_step *s, Drover__StepResult result, int32_t exit_code,
                          const char *message);
/* Remember a step (dropping the oldest when full); returns its entry. */
struct linkstate_step *linkstate_add(struct linkstate *st, uint64_t seq, const char *step_id,
                                     const char *deployment_id);

#endif
