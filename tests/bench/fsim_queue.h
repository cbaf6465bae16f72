/*
 * fsim_queue.h: the fleet simulator's trigger through droverd's admin API:
 * one RUN_HOOK instruction for each agent (the debug/operator path
 * POST /v1/agents/{id}/instructions, documented in docs/api.md).
 */
#ifndef DRV_FSIM_QUEUE_H
#define DRV_FSIM_QUEUE_H

#include <stddef.h>

/* Everything borrowed for the call. */
struct fsim_queue_req {
	const char *api;         /* http://HOST:PORT */
	const char *token;       /* admin token */
	const char *step_prefix; /* step ids are PREFIX-INDEX */
	const char *const *ids;  /* agent ids */
	size_t n;
	size_t parallel; /* requests in flight (0: 8) */
};

/* Queue one instruction per agent; returns when every request is answered.
 * *failed counts requests that did not get 200/201. curl_global_init()
 * must have been called. */
int fsim_queue_all(const struct fsim_queue_req *q, size_t *failed);

#endif
