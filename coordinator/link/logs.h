/*
 * logs.h: a service's output fetched from an agent over the signed link
 * (`drover logs`). A request is an ACTION_READ_LOG instruction with a step
 * id of its own ("log:..."); the agent answers with a Report carrying a
 * LogChunk, which core_report.c hands here instead of to the deployment engine.
 * The caller waits (bounded) for it. The text is never stored: only the
 * "report" event of the step (its size) is.
 *
 * Limits: LOGS_WAITING_MAX requests wait at once, LOGS_RATE_PER_S start per
 * second (both DRV_ETOOBIG beyond); an answer holds at most 64 KiB (the
 * agent's cap, checked again here).
 */
#ifndef DRV_LINK_LOGS_H
#define DRV_LINK_LOGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "dispatch.h"
#include "drover.pb-c.h"

#define LOGS_WAITING_MAX 32
#define LOGS_RATE_PER_S  20
#define LOGS_TEXT_MAX    (64u << 10)
#define LOGS_STEP_PREFIX "log:"

struct link_logs;

/* How a request reaches the agent (core.c passes core_queue): logs.c
 * stays below the core that calls it. */
typedef int (*link_logs_queue_fn)(void *arg, const struct dispatch_instr *in, uint64_t *seq);

int link_logs_new(struct link_logs **out);
void link_logs_free(struct link_logs *l);

/* Core side (core lock held): true when r belongs to a log request (then
 * it is consumed, answered or late). */
bool link_logs_offer(struct link_logs *l, const char *agent, const Drover__Report *r);

/*
 * Queue a READ_LOG for agent and wait up to timeout_ms for the answer. On
 * success *out is {"host", "instance", "text", "offset", "truncated",
 * "rotated"}. DRV_ENOENT unknown agent, DRV_ESTATE not accepted, DRV_ETOOBIG
 * too many requests, DRV_ETIMEDOUT no answer in time, DRV_EIO the agent
 * answered with an error (why says it).
 */
int link_logs_read(struct link_logs *l, link_logs_queue_fn queue, void *queue_arg,
                   const char *agent, const Drover__LogRequest *rq, int64_t timeout_ms,
                   json_t **out, char *why, size_t why_cap);

/* One host's part of link_logs_read_many: agent in; out (a new reference)
 * or rc and why out, as link_logs_read. */
struct link_logs_answer {
	const char *agent;
	json_t *out;
	int rc;
	char why[300];
};

/*
 * link_logs_read for n agents at once: the requests go out together and
 * their answers are awaited together (up to timeout_ms for each round of at
 * most LOGS_WAITING_MAX within the rate), so a slow host costs one timeout,
 * not one per host. Every answer gets out or rc.
 */
void link_logs_read_many(struct link_logs *l, link_logs_queue_fn queue, void *queue_arg,
                         struct link_logs_answer *answers, size_t n, const Drover__LogRequest *rq,
                         int64_t timeout_ms);

#endif
