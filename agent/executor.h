/*
 * executor.h: runs one instruction on this host (the agent's runtime).
 *
 * This is the contract between the link (agent/uplink.c, which receives,
 * verifies and sequences instructions) and the runtime (image puller,
 * drivers, health checks, hooks, release switching). The link calls
 * executor_run() for every instruction it has accepted and persisted; the
 * executor reports progress and the final result through the callback.
 *
 * Idempotency: the executor remembers step ids in its state database
 * (STATE_DIR/agent.db), the agent's one record of every step and its result
 * (the link asks it, executor_step_get, and records there the steps it
 * refuses, executor_step_record). Running a step id that already finished
 * reports the recorded result again without acting; running one that is
 * still queued or running reports STEP_RUNNING and does nothing else.
 *
 * Concurrency: steps for the same service run one after another in arrival
 * order; steps for different services and hooks run in parallel (up to four
 * worker threads, started when a step finds none idle; the most recently
 * idle one takes the next step, and all but one end after worker_idle_ms
 * idle, so steps that come one at a time all run on one thread).
 *
 * History: agent.db keeps each step for steps_age_ms and at least the last
 * steps_keep; older ones are pruned at start and every 100 finished steps.
 *
 * Crash behaviour: a step that was queued or running when the agent died is
 * recorded as failed ("interrupted: the agent stopped while the step was
 * running") when the next executor starts, reported once through
 * cfg->events, and reported again (failed) if the step id is resent. Service
 * processes of the exec driver outlive the agent and are re-adopted; what
 * executor_releases() says comes from the drivers (is the process or
 * container really there?), never only from the database.
 */
#ifndef DRV_EXECUTOR_H
#define DRV_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover.pb-c.h"

struct executor;

/*
 * Called for each progress or final report. The executor owns `report` and
 * everything it points to; the callee copies what it keeps. Called from the
 * executor's threads, and also on the caller's thread inside executor_run()
 * (STEP_ACCEPTED, and the replay of a finished step): do not hold a lock
 * there that the callback takes. agent_id is cfg->agent_id (or ""); the link
 * sets report_seq.
 */
typedef void (*executor_report_fn)(const Drover__Report *report, void *arg);

struct executor_config {
	const char *state_dir;     /* local state: agent.db, pid files */
	const char *cache_dir;     /* content-addressed blobs */
	const char *releases_dir;  /* unpacked releases, one dir per service/digest */
	const char *log_dir;       /* service stdout/stderr, hook output */
	const char *docker_socket; /* container driver; NULL = /run/podman/podman.sock */
	int insecure_registry;     /* allow http:// registries (tests, air-gapped labs) */
	/* Added by the runtime (all optional): */
	const char *agent_id;      /* copied into every report */
	executor_report_fn events; /* reports outside any step: STEP_HEALTH transitions,
	                            * STEP_STATUS (crash loops), and STEP_FAILED for
	                            * steps a previous agent died under */
	void *events_arg;
	long pull_stall_s;           /* a registry transfer this long without data fails; 0 = 30 */
	const char *fetch_exe;       /* registry pulls in this fetch helper; NULL: in process */
	unsigned long log_max_bytes; /* exec service logs rotate past this; 0 = 10 MiB */
	unsigned log_keep;           /* rotated files kept; 0 = 3 */
	/* 0 = the defaults; other values are for tests */
	int64_t worker_idle_ms; /* a worker beyond the first ends this long idle; 0 = 30 s */
	int steps_keep;         /* the last steps always kept; 0 = 2000 */
	int64_t steps_age_ms;   /* older steps beyond those are pruned; 0 = 14 days */
};

/* Opens (creates) the directories and the state database, recovers what a
 * previous agent left (running services; its unfinished steps: resumed when
 * safe and still awaited, else reported failed) and starts the workers.
 * The strings in cfg are copied. */
int executor_new(const struct executor_config *cfg, struct executor **out);
/* Stops the workers: a running hook is killed, a pull or a health gate in
 * progress is cut short. A hook's step is reported failed (report() must
 * still work while this runs); a service step that can be resumed is left
 * unfinished in the state, for the next executor_new to run again. Leaves
 * services running. NULL is fine. */
void executor_free(struct executor *ex);

/*
 * Start running an instruction. Returns at once (DRV_OK) after persisting
 * and queueing it; the outcome arrives through report(): STEP_ACCEPTED, then
 * STEP_RUNNING (optional, repeated), then exactly one STEP_SUCCEEDED or
 * STEP_FAILED. An instruction the executor cannot carry out (unknown action,
 * missing service, bad name) is reported STEP_FAILED, still with DRV_OK.
 * DRV_EINVAL (nothing reported) only for NULL arguments or an empty step id.
 * The executor copies what it needs from `ins`.
 */
int executor_run(struct executor *ex, const Drover__Instruction *ins, executor_report_fn report,
                 void *arg);

#define EXECUTOR_MESSAGE_MAX 200 /* bytes of a recorded message the link repeats */

/* A step as recorded in agent.db, as the link repeats it to the coordinator. */
struct executor_step {
	uint64_t seq;              /* the instruction that carried it */
	Drover__StepResult result; /* STEP_ACCEPTED while queued or running */
	int32_t exit_code;
	char message[EXECUTOR_MESSAGE_MAX + 1]; /* cut on a UTF-8 boundary */
};

/* DRV_ENOENT if the step id is unknown (never seen, or pruned). */
int executor_step_get(struct executor *ex, const char *step_id, struct executor_step *out);
/* Record a step that will not run as finished (the link refused it, or an
 * old link state file remembered it); DRV_EEXIST if the id is known. */
int executor_step_record(struct executor *ex, const Drover__Instruction *ins, bool ok,
                         int32_t exit_code, const char *message);

/*
 * What is really running, for Hello and status reports: one Release per
 * service (the current release, previous_* filled in) plus one per extra
 * running blue-green slot. On success *out is a malloc'd array of malloc'd
 * Release messages; free with executor_releases_free.
 */
int executor_releases(struct executor *ex, Drover__Release ***out, size_t *n_out);
void executor_releases_free(Drover__Release **rel, size_t n);

/* Block until no step is queued or running (debug tool, tests). */
void executor_drain(struct executor *ex);
/* Worker threads alive now (tests). */
size_t executor_workers(struct executor *ex);

#endif
