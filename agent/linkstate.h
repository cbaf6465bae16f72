/*
 * linkstate.h: what the agent's link must remember across restarts, in one
 * small JSON file written atomically (atomicfile.h):
 *
 *   - applied_seq: the highest instruction sequence number applied. It is
 *     saved BEFORE an instruction is handed to the executor, so a crash
 *     can never let the same sequence number run twice;
 *   - report_seq_reserved: report sequence numbers are reserved in blocks,
 *     so a restarted agent never reuses one the coordinator has seen.
 *
 * Steps and their results are not here: the executor's agent.db is the
 * agent's one record of them (executor.h). Files written before that kept
 * the last LINKSTATE_STEPS_MAX steps under "steps": they are still read
 * (into steps[], for the link to move into agent.db once) and never
 * written again.
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

/* A step remembered by an old file (read only, for the move to agent.db). */
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
	uint64_t epoch; /* absent in files of older agents: 0 */
	size_t n_steps; /* old files only: oldest first; never saved */
	struct linkstate_step steps[LINKSTATE_STEPS_MAX];
};

/* A coordinator message's HA epoch against st->epoch: DRV_ESTALE if lower
 * (refuse it); DRV_OK if equal; DRV_EEXIST if higher, after raising
 * st->epoch (the caller saves the state before acting on the message). */
int linkstate_epoch_seen(struct linkstate *st, uint64_t epoch);

/* A missing file is a fresh state (DRV_OK, all zero). */
int linkstate_load(const char *path, struct linkstate *out);
/* The decoder behind linkstate_load (fuzzed). */
int linkstate_parse(const char *buf, size_t len, struct linkstate *out);
/* Writes applied_seq, report_seq_reserved and epoch (steps are not saved). */
int linkstate_save(const char *path, const struct linkstate *st);

#endif
