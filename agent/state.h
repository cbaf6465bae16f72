/*
 * state.h: the agent's local state, in SQLite (STATE_DIR/agent.db).
 *
 * What survives an agent crash: every step it accepted (for idempotency and
 * for reporting the ones a crash interrupted), the current and previous
 * release of each service (with the full ServiceSpec, so a rollback needs
 * nothing from the coordinator or the registry), and the releases that were
 * prestaged but not yet started (so image GC keeps them).
 *
 * Thread-safe: one lock around the connection. Every string in a record
 * returned here is malloc'd and owned by the caller (free with the *_clear
 * functions).
 */
#ifndef DRV_AGENT_STATE_H
#define DRV_AGENT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover.pb-c.h"

struct state;

enum state_step_status { STEP_QUEUED, STEP_RUNNING_, STEP_OK, STEP_FAIL };

struct state_step {
	char *step_id;
	char *deployment;
	char *service;
	char *message;
	char *output_tail;
	uint64_t seq;
	int action; /* Drover__Action */
	enum state_step_status status;
	int exit_code;
	int64_t duration_ms;
	Drover__Instruction *ins; /* state_steps_interrupted only (else NULL); owned */
};

enum state_role { ROLE_CURRENT, ROLE_PREVIOUS };

struct state_release {
	char *service;
	char *digest;
	char *version;
	char *slot;
	char *root; /* release directory (exec driver) or "" */
	uint32_t port;
	bool want_running;         /* the supervisor keeps it running */
	int64_t since_ms;          /* wall clock of the last change */
	Drover__ServiceSpec *spec; /* owned; free with state_release_clear */
};

int state_open(const char *path, struct state **out);
void state_close(struct state *st);

/* DRV_ENOENT if the step is unknown. */
int state_step_get(struct state *st, const char *step_id, struct state_step *out);
/* Record a new step as queued; DRV_EEXIST if the id is known. */
int state_step_insert(struct state *st, const Drover__Instruction *ins, const char *service);
int state_step_start(struct state *st, const char *step_id);
int state_step_finish(struct state *st, const char *step_id, bool ok, const char *message,
                      int exit_code, const char *tail, int64_t duration_ms);
/* The steps an agent restart found queued or running, oldest first, each
 * with its instruction (ins; NULL for a step recorded by an agent that did
 * not keep it, or one that no longer decodes). Changes nothing. */
int state_steps_interrupted(struct state *st, struct state_step **out, size_t *n);
/* Mark every queued or running step failed (the agent died under it) and
 * return those steps (malloc'd array; free with state_steps_free). */
int state_steps_recover(struct state *st, const char *why, struct state_step **out, size_t *n);
/* Forget finished steps older than max_age_ms, keeping at least keep_last. */
int state_steps_prune(struct state *st, int64_t max_age_ms, int keep_last);
void state_step_clear(struct state_step *s);
void state_steps_free(struct state_step *s, size_t n);

/* DRV_ENOENT if the service has no release in that role. */
int state_release_get(struct state *st, const char *service, enum state_role role,
                      struct state_release *out);
/* In one transaction: the current release becomes the previous one (the old
 * previous is forgotten) and rel becomes current. */
int state_release_shift(struct state *st, const struct state_release *rel);
/* In one transaction: exchange current and previous. DRV_ENOENT if no previous. */
int state_release_swap(struct state *st, const char *service);
int state_release_set_want(struct state *st, const char *service, enum state_role role, bool run);
/* Every release of every service (current and previous). */
int state_release_list(struct state *st, struct state_release **out, enum state_role **roles,
                       size_t *n);
void state_release_clear(struct state_release *r);
void state_releases_free(struct state_release *r, enum state_role *roles, size_t n);

/* Prestaged releases not yet started, kept by GC. */
int state_staged_add(struct state *st, const char *service, const char *digest);
int state_staged_clear(struct state *st, const char *service);
/* The (service, digest) pairs GC must keep: current, previous, staged.
 * Two parallel malloc'd arrays of malloc'd strings; free each with
 * state_strings_free. */
int state_kept(struct state *st, char ***services, char ***digests, size_t *n);
void state_strings_free(char **s, size_t n);

#endif
