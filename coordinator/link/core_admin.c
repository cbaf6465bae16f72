/* core_admin.c: the operator's side: accept or reject, relabel, enrollment
 * tokens, and the agent listings. */
#include "core.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "core_int.h"
#include "err.h"
#include "linkstats.h"
#include "log.h"

static int set_status_locked(struct core *c, const char *id, enum agent_status st, const char *by)
{
	struct store_agent sa;
	struct agent_rt *a;
	int rc;

	rc = store_agent_get(c->cfg.store, id, &sa);
	if (rc != DRV_OK)
		return rc;
	if (sa.status == st)
		return DRV_OK;
	rc = store_agent_set_status(c->cfg.store, id, st, by, drv_wall_ms());
	if (rc != DRV_OK)
		return rc;
	a = registry_get(c->reg, id);
	if (a == NULL && (rc = registry_add(c->reg, id, &a)) != DRV_OK)
		return rc;
	a->status = st;
	a->key = sa.key;
	if (st != AGENT_ACCEPTED) {
		if (a->parked != NULL)
			core_unpark(a, NULL, 0);
		core_set_connected(c, a, false, "no longer accepted");
	} else {
		drv_linkstats_inc(DRV_STAT_AGENTS_ENROLLED);
	}
	drv_info("core", st == AGENT_ACCEPTED ? "agent accepted" : "agent status changed",
	         "agent=%s status=%s by=%s", id, store_agent_status_name(st), by);
	core_event(c, st == AGENT_ACCEPTED ? "agent_accepted" : "agent_rejected", id,
	           json_pack("{s:s}", "by", by));
	if (c->hooks.on_agent != NULL)
		c->hooks.on_agent(c->hooks.arg, id, store_agent_status_name(st));
	return DRV_OK;
}

int core_set_status(struct core *c, const char *id, enum agent_status st, const char *by)
{
	int rc;

	if (!drv_agent_id_valid(id))
		return DRV_ENOENT;
	gcommit_lock(&c->gc);
	rc = set_status_locked(c, id, st, by ? by : "");
	gcommit_unlock(&c->gc);
	return rc;
}

int core_relabel(struct core *c, const char *id, const char *by)
{
	char *labels = NULL, *proposed = NULL;
	int rc;

	if (!drv_agent_id_valid(id))
		return DRV_ENOENT;
	gcommit_lock(&c->gc);
	rc = store_agent_labels(c->cfg.store, id, &labels, &proposed);
	if (rc == DRV_OK && proposed == NULL)
		rc = DRV_ESTATE;
	if (rc == DRV_OK)
		rc = store_agent_apply_proposed(c->cfg.store, id);
	if (rc == DRV_OK) {
		drv_info("core", "agent labels changed", "agent=%s from=%s to=%s by=%s", id, labels,
		         proposed, by);
		core_event(c, "agent_relabeled", id,
		           json_pack("{s:o, s:o, s:s}", "from", json_loads(labels, 0, NULL), "to",
		                     json_loads(proposed, 0, NULL), "by", by ? by : ""));
	}
	gcommit_unlock(&c->gc);
	free(labels);
	free(proposed);
	return rc;
}

int core_enroll_token_create(struct core *c, const struct store_token *t, char *token, size_t cap)
{
	int rc;

	gcommit_lock(&c->gc);
	rc = store_enroll_token_create(c->cfg.store, t, drv_wall_ms(), token, cap);
	gcommit_unlock(&c->gc);
	if (rc == DRV_OK)
		drv_info("core", "enrollment token created",
		         "name=%s expires_ms=%" PRId64 " max_uses=%" PRId64 " labels=%s", t->name,
		         t->expires_ms, t->max_uses, t->labels ? t->labels : "{}");
	return rc;
}

int core_enroll_token_revoke(struct core *c, const char *name)
{
	int rc;

	gcommit_lock(&c->gc);
	rc = store_enroll_token_revoke(c->cfg.store, name, drv_wall_ms());
	gcommit_unlock(&c->gc);
	if (rc == DRV_OK)
		drv_info("core", "enrollment token revoked", "name=%s", name);
	return rc;
}

int core_enroll_token_list(struct core *c, json_t **out)
{
	int rc;

	gcommit_lock(&c->gc);
	rc = store_enroll_token_list(c->cfg.store, drv_wall_ms(), out);
	gcommit_unlock(&c->gc);
	return rc;
}

static const char *state_of(const struct store_agent *sa, const struct agent_rt *a)
{
	if (sa->status == AGENT_PENDING)
		return "pending";
	if (sa->status == AGENT_REJECTED)
		return "rejected";
	return a != NULL && a->connected ? "connected" : "disconnected";
}

static json_t *parse_or(const char *text, json_t *fallback)
{
	json_t *j = json_loads(text, 0, NULL);

	if (j == NULL)
		return fallback;
	json_decref(fallback);
	return j;
}

static json_t *agent_json(struct core *c, const struct store_agent_row *row)
{
	const struct store_agent *sa = row->agent;
	struct agent_rt *a = registry_get(c->reg, sa->id);
	int64_t seen = a != NULL && a->last_seen_ms > sa->last_seen_ms ? a->last_seen_ms
	                                                               : sa->last_seen_ms;

	return json_pack(
	        "{s:s, s:s, s:s, s:b, s:I, s:I, s:s, s:o, s:o, s:o, s:s, s:s, s:I, s:I, s:o,"
	        " s:s}",
	        "id", sa->id, "status", store_agent_status_name(sa->status), "state",
	        state_of(sa, a), "connected", a != NULL && a->connected, "last_seen_ms",
	        (json_int_t)seen, "first_seen_ms", (json_int_t)sa->first_seen_ms, "key_id",
	        sa->key.id, "labels", parse_or(row->labels_json, json_object()), "facts",
	        parse_or(row->facts_json, json_object()), "releases",
	        parse_or(row->releases_json, json_array()), "agent_version", row->agent_version,
	        "enrolled_by", sa->enrolled_by, "next_seq", (json_int_t)sa->next_seq, "acked_seq",
	        (json_int_t)sa->acked_seq, "proposed_labels",
	        row->proposed_labels_json ? parse_or(row->proposed_labels_json, json_null())
	                                  : json_null(),
	        "peer", sa->peer);
}

struct list_ctx {
	struct core *c;
	json_t *arr;
	const char *only;
};

static int list_one(void *arg, const struct store_agent_row *row)
{
	struct list_ctx *l = arg;
	json_t *j;

	if (l->only != NULL && strcmp(l->only, row->agent->id) != 0)
		return DRV_OK;
	j = agent_json(l->c, row);
	if (j == NULL || json_array_append_new(l->arr, j) != 0)
		return DRV_ENOMEM;
	return DRV_OK;
}

static int list(struct core *c, const char *only, json_t **out)
{
	struct list_ctx l = {c, json_array(), only};
	int rc;

	if (l.arr == NULL)
		return DRV_ENOMEM;
	gcommit_lock(&c->gc);
	rc = store_agent_foreach(c->cfg.store, list_one, &l);
	gcommit_unlock(&c->gc);
	if (rc != DRV_OK) {
		json_decref(l.arr);
		return rc;
	}
	*out = l.arr;
	return DRV_OK;
}

int core_agents_json(struct core *c, json_t **out)
{
	return list(c, NULL, out);
}

int core_agent_json(struct core *c, const char *id, json_t **out)
{
	json_t *arr, *one;
	int rc = list(c, id, &arr);

	if (rc != DRV_OK)
		return rc;
	one = json_array_get(arr, 0);
	if (one == NULL) {
		json_decref(arr);
		return DRV_ENOENT;
	}
	json_incref(one);
	json_decref(arr);
	*out = one;
	return DRV_OK;
}

/* A stored JSON text, or an empty object (array) when unreadable. */
static json_t *parse_brief(const char *text, bool array)
{
	json_t *j = json_loads(text, 0, NULL);

	if (j == NULL)
		j = array ? json_array() : json_object();
	return j;
}

static int brief_one(void *arg, const struct store_agent_brief *b)
{
	json_t *j =
	        json_pack("{s:s, s:s, s:o, s:o, s:s}", "id", b->id, "status", b->status, "labels",
	                  parse_brief(b->labels_json, false), "releases",
	                  parse_brief(b->releases_json, true), "agent_version", b->agent_version);

	if (j == NULL || json_array_append_new(arg, j) != 0)
		return DRV_ENOMEM;
	return DRV_OK;
}

int core_agents_brief_json(struct core *c, json_t **out)
{
	json_t *arr = json_array();
	int rc;

	if (arr == NULL)
		return DRV_ENOMEM;
	gcommit_lock(&c->gc);
	rc = store_agent_brief_foreach(c->cfg.store, brief_one, arr);
	gcommit_unlock(&c->gc);
	if (rc != DRV_OK) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return DRV_OK;
}

static void count_one(void *arg, struct agent_rt *a)
{
	struct core_counts *n = arg;

	if (a->status == AGENT_PENDING)
		n->pending++;
	else if (a->status == AGENT_REJECTED)
		n->rejected++;
	else if (a->connected)
		n->connected++;
	else
		n->disconnected++;
}

void core_agent_counts(struct core *c, struct core_counts *out)
{
	struct core_counts n = {0};

	gcommit_lock(&c->gc);
	registry_foreach(c->reg, count_one, &n);
	gcommit_unlock(&c->gc);
	*out = n;
}
