/*
 * deploy_queue.c: the helpers every file of the engine uses, below all of
 * them: the engine thread's message queue (post from any thread, take on
 * the engine thread) and queueing an event of a deployment's transition.
 * A leaf: it calls no other file of the engine.
 */
#include "deploy_int.h"

#include <stdlib.h>

#include "log.h"

/* ---- the queue ---- */

void deploy_msg_free(struct msg *m)
{
	if (m == NULL)
		return;
	free(m->id);
	free(m->service);
	free(m->message);
	free(m->output_tail);
	json_decref(m->data);
	free(m);
}

void deploy_post(struct deploy_engine *e, struct msg *m)
{
	pthread_mutex_lock(&e->mu);
	if (m->kind != MSG_CMD && e->queued >= DEPLOY_QUEUE_MAX) {
		if (e->dropped++ % 1000 == 0)
			drv_error("deploy", "engine queue full: message dropped", "dropped=%zu",
			          e->dropped);
		pthread_mutex_unlock(&e->mu);
		deploy_msg_free(m);
		return;
	}
	if (e->tail != NULL)
		e->tail->next = m;
	else
		e->head = m;
	e->tail = m;
	e->queued++;
	pthread_cond_signal(&e->wake);
	pthread_mutex_unlock(&e->mu);
}

struct msg *deploy_take(struct deploy_engine *e)
{
	struct msg *m = e->head;

	if (m != NULL) {
		e->head = m->next;
		if (e->head == NULL)
			e->tail = NULL;
		e->queued--;
		m->next = NULL;
	}
	return m;
}

/* ---- events ---- */

void deploy_event(struct dep *d, const char *kind, const char *agent, json_t *data)
{
	json_t *e = json_pack("{s:s, s:s?, s:o}", "kind", kind, "agent", agent, "data",
	                      data ? data : json_object());

	if (e != NULL)
		json_array_append_new(d->events, e);
}
