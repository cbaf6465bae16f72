/*
 * runtime.h: release switching per service, on top of the image puller, the
 * drivers and the health checker. The executor calls one function per
 * service action; each fills a step_outcome (a failed step is DRV_OK with
 * outcome->ok false; an error code means the agent itself could not work).
 *
 * The runtime also owns the supervisor thread: it restarts crashed exec
 * services (with crash-loop throttling), rotates their logs, and runs the
 * continuous health checks whose transitions go to cfg->events.
 */
#ifndef DRV_AGENT_RUNTIME_H
#define DRV_AGENT_RUNTIME_H

#include <stddef.h>

#include "drover.pb-c.h"
#include "state.h"
#include "step.h"
#include "stop_token.h"

struct runtime;

typedef void (*runtime_event_fn)(const Drover__Report *report, void *arg);

struct runtime_config {
	const char *state_dir;
	const char *cache_dir;
	const char *releases_dir;
	const char *log_dir;
	const char *docker_socket;
	int insecure_registry;
	long pull_stall_s;               /* 0 = 30 */
	const char *fetch_exe;           /* registry pulls in the fetch helper (puller.h) */
	unsigned long log_max_bytes;     /* exec service logs; 0 = 10 MiB */
	unsigned log_keep;               /* rotated files kept; 0 = 3 */
	const struct stop_token *cancel; /* set: the agent is stopping (may be NULL) */
	runtime_event_fn events;         /* health transitions, crash loops */
	void *events_arg;
};

/* The runtime borrows st (the caller closes it after runtime_free). */
int runtime_new(const struct runtime_config *cfg, struct state *st, struct runtime **out);
void runtime_free(struct runtime *rt);

int runtime_prestage(struct runtime *rt, const Drover__Instruction *ins, struct step_outcome *o);
int runtime_start(struct runtime *rt, const Drover__Instruction *ins, struct step_outcome *o);
int runtime_stop(struct runtime *rt, const Drover__Instruction *ins, struct step_outcome *o);
int runtime_activate_previous(struct runtime *rt, const Drover__Instruction *ins,
                              struct step_outcome *o);
int runtime_health_check(struct runtime *rt, const Drover__Instruction *ins,
                         struct step_outcome *o);
int runtime_finalize(struct runtime *rt, const Drover__Instruction *ins, struct step_outcome *o);

/* What is really running (see executor_releases). */
int runtime_releases(struct runtime *rt, Drover__Release ***out, size_t *n);

#endif
