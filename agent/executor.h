/*
 * executor.h: runs one instruction on this host (the agent's runtime).
 *
 * This is the contract between the link (agent/link.c, which receives,
 * verifies and sequences instructions) and the runtime (image puller,
 * drivers, health checks, hooks, release switching). The link calls
 * executor_run() for every instruction it has accepted and persisted; the
 * executor reports progress and the final result through the callback.
 *
 * Idempotency: the executor remembers finished step ids; running a step id
 * that already finished reports the recorded result again without acting.
 */
#ifndef DRV_EXECUTOR_H
#define DRV_EXECUTOR_H

#include <stddef.h>

#include "drover.pb-c.h"

struct executor;

struct executor_config {
	const char *state_dir;     /* local state: releases, steps (SQLite or files) */
	const char *cache_dir;     /* content-addressed blobs */
	const char *releases_dir;  /* unpacked releases, one dir per service/digest */
	const char *log_dir;       /* service stdout/stderr */
	const char *docker_socket; /* container driver; NULL = /run/podman/podman.sock */
	int insecure_registry;     /* allow http:// registries (tests, air-gapped labs) */
};

/*
 * Called for each progress or final report. The executor owns `report` and
 * everything it points to; the callee copies what it keeps. May be called from
 * the executor's worker threads.
 */
typedef void (*executor_report_fn)(const Drover__Report *report, void *arg);

int executor_new(const struct executor_config *cfg, struct executor **out);
void executor_free(struct executor *ex);

/*
 * Start running an instruction. Returns at once (DRV_OK) after queueing it;
 * the outcome arrives through report(): STEP_ACCEPTED, then STEP_RUNNING
 * (optional, repeated), then exactly one STEP_SUCCEEDED or STEP_FAILED.
 * The executor copies what it needs from `ins`.
 */
int executor_run(struct executor *ex, const Drover__Instruction *ins, executor_report_fn report,
                 void *arg);

/*
 * What is really running, for Hello and status reports. On success *out is a
 * malloc'd array of malloc'd Release messages; free with executor_releases_free.
 */
int executor_releases(struct executor *ex, Drover__Release ***out, size_t *n_out);
void executor_releases_free(Drover__Release **rel, size_t n);

#endif
