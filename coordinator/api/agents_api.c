/* agents_api.c: /v1/agents and /v1/enroll-tokens routes and the link's metrics. */
#include "agents_api.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "enroll_rules.h"
#include "envelope.h"
#include "err.h"
#include "linkstats.h"
#include "tokens.h"

#define ENROLL_TTL_DEFAULT_MS (24 * 3600 * 1000LL)
#define ENROLL_TTL_MAX_MS     (365 * 24 * 3600 * 1000LL)

#define HOOK_ARGS_MAX 64
#define HOOK_ENV_MAX  64

static int agents_list(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	json_t *arr;
	int rc = core_agents_json(ctx, &arr);

	if (rc != DRV_OK)
		return rc;
	return drv_http_json(resp, 200, json_pack("{s:o}", "agents", arr));
}

static int agent_get(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	const char *id = drv_http_param(req, "id");
	json_t *one;

	if (!drv_agent_id_valid(id) || core_agent_json(ctx, id, &one) != DRV_OK)
		return drv_http_error(resp, 404, "not-found", "no agent '%s'", id);
	return drv_http_json(resp, 200, one);
}

static int set_status(struct drv_http_req *req, struct drv_http_resp *resp, struct core *c,
                      enum agent_status st)
{
	const char *id = drv_http_param(req, "id");
	char by[128];
	json_t *one;
	int rc;

	snprintf(by, sizeof(by), "operator:%.100s", drv_http_actor(req));
	rc = core_set_status(c, id, st, by);
	drv_http_audit_note(req, "agent=%s status=%s", id, store_agent_status_name(st));
	if (rc == DRV_ENOENT)
		return drv_http_error(resp, 404, "not-found", "no agent '%s'", id);
	if (rc != DRV_OK)
		return rc;
	if (core_agent_json(c, id, &one) != DRV_OK)
		return DRV_EDB;
	return drv_http_json(resp, 200, one);
}

static int agent_accept(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	return set_status(req, resp, ctx, AGENT_ACCEPTED);
}

static int agent_reject(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	return set_status(req, resp, ctx, AGENT_REJECTED);
}

static int agent_relabel(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	const char *id = drv_http_param(req, "id");
	char by[128];
	json_t *one;
	int rc;

	snprintf(by, sizeof(by), "operator:%.100s", drv_http_actor(req));
	rc = core_relabel(ctx, id, by);
	drv_http_audit_note(req, "agent=%s relabel", id);
	if (rc == DRV_ENOENT)
		return drv_http_error(resp, 404, "not-found", "no agent '%s'", id);
	if (rc == DRV_ESTATE)
		return drv_http_error(resp, 409, "no-proposed-labels",
		                      "agent '%s' has proposed no label change", id);
	if (rc != DRV_OK)
		return rc;
	if (core_agent_json(ctx, id, &one) != DRV_OK)
		return DRV_EDB;
	return drv_http_json(resp, 200, one);
}

/* ---- enrollment tokens ---- */

static int tokens_list(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	json_t *arr;
	int rc = core_enroll_token_list(ctx, &arr);

	(void)req;
	if (rc != DRV_OK)
		return rc;
	return drv_http_json(resp, 200, json_pack("{s:o}", "tokens", arr));
}

/* "labels": ["tier=web", ...] to the rules' JSON (*out malloc'd). */
static int rules_from_json(json_t *labels, char **out, struct drv_http_resp *resp)
{
	const char *kv[ENROLL_RULES_MAX];
	char why[160] = "";
	json_t *v;
	size_t i;

	if (json_array_size(labels) > ENROLL_RULES_MAX)
		return drv_http_error_at(resp, 400, "bad-request", "labels", 0,
		                         "at most %d label rules", ENROLL_RULES_MAX);
	json_array_foreach(labels, i, v)
	{
		if (!json_is_string(v))
			return drv_http_error_at(resp, 400, "wrong-type", "labels", 0,
			                         "labels[%zu] must be a KEY=VALUE string", i);
		kv[i] = json_string_value(v);
	}
	if (enroll_rules_parse(kv, json_array_size(labels), out, why, sizeof(why)) != DRV_OK)
		return drv_http_error_at(resp, 400, "bad-request", "labels", 0, "%s",
		                         why[0] ? why : "invalid label rule");
	return DRV_OK;
}

static int token_create(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	static const struct drv_json_field fields[] = {
	        {.name = "name", .type = DRV_J_STRING, .required = true, .max = 64},
	        {.name = "ttl_ms", .type = DRV_J_INT},
	        {.name = "max_uses", .type = DRV_J_INT},
	        {.name = "labels", .type = DRV_J_ARRAY, .max = ENROLL_RULES_MAX},
	};
	struct store_token t = {0};
	char tok[DRV_SECRET_MAX], *rules = NULL;
	json_int_t ttl, uses;
	json_t *body;
	int rc;

	if (drv_http_body_json(req, resp, fields, 4, &body) != DRV_OK)
		return DRV_OK;
	t.name = json_string_value(json_object_get(body, "name"));
	ttl = json_object_get(body, "ttl_ms") ? json_integer_value(json_object_get(body, "ttl_ms"))
	                                      : ENROLL_TTL_DEFAULT_MS;
	uses = json_integer_value(json_object_get(body, "max_uses"));
	if (drv_token_name_check(t.name) != DRV_OK) {
		rc = drv_http_error_at(resp, 400, "bad-request", "name", 0,
		                       "a name is 1-64 of A-Z a-z 0-9 . _ @ -");
		goto out;
	}
	if (ttl < 1000 || ttl > ENROLL_TTL_MAX_MS || uses < 0 || uses > 1000000) {
		rc = drv_http_error(resp, 400, "bad-request",
		                    "ttl_ms must be 1 s to 365 days, max_uses 0 to 1000000");
		goto out;
	}
	if (rules_from_json(json_object_get(body, "labels"), &rules, resp) != DRV_OK) {
		rc = DRV_OK;
		goto out;
	}
	t.expires_ms = drv_wall_ms() + ttl;
	t.max_uses = uses;
	t.labels = rules;
	rc = core_enroll_token_create(ctx, &t, tok, sizeof(tok));
	drv_http_audit_note(req, "enroll-token=%s create", t.name);
	if (rc == DRV_EEXIST)
		rc = drv_http_error(resp, 409, "exists", "an enrollment token named '%s' exists",
		                    t.name);
	else if (rc == DRV_OK)
		rc = drv_http_json(resp, 201,
		                   json_pack("{s:s, s:s, s:I, s:I, s:o}", "name", t.name, "token",
		                             tok, "expires_ms", (json_int_t)t.expires_ms,
		                             "max_uses", (json_int_t)t.max_uses, "labels",
		                             json_loads(rules, 0, NULL)));
	sodium_memzero(tok, sizeof(tok));
out:
	free(rules);
	json_decref(body);
	return rc;
}

static int token_revoke(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	const char *name = drv_http_param(req, "name");
	int rc = drv_token_name_check(name) == DRV_OK ? core_enroll_token_revoke(ctx, name)
	                                              : DRV_ENOENT;

	drv_http_audit_note(req, "enroll-token=%s revoke", name);
	if (rc == DRV_ENOENT)
		return drv_http_error(resp, 404, "not-found", "no enrollment token '%s'", name);
	if (rc != DRV_OK)
		return rc;
	return drv_http_json(resp, 200, json_pack("{s:s, s:s}", "name", name, "state", "revoked"));
}

/* The hook's argv and env from the body; NULL-free strings only. */
struct hook_buf {
	char *argv[HOOK_ARGS_MAX];
	Drover__KeyValue kv[HOOK_ENV_MAX], *kvp[HOOK_ENV_MAX];
	Drover__Hook hook;
};

static int hook_from_json(json_t *body, struct hook_buf *h, struct drv_http_resp *resp)
{
	json_t *run = json_object_get(body, "run"), *env = json_object_get(body, "env"), *v;
	const char *k;
	size_t i;

	drover__hook__init(&h->hook);
	if (json_array_size(run) == 0 || json_array_size(run) > HOOK_ARGS_MAX)
		return drv_http_error_at(resp, 400, "bad-request", "run", 0,
		                         "run must list 1 to %d strings", HOOK_ARGS_MAX);
	json_array_foreach(run, i, v)
	{
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
			return drv_http_error_at(resp, 400, "wrong-type", "run", 0,
			                         "run[%zu] must be a string without NUL", i);
		h->argv[i] = (char *)json_string_value(v);
	}
	h->hook.run = h->argv;
	h->hook.n_run = json_array_size(run);
	json_object_foreach(env, k, v)
	{
		if (!json_is_string(v))
			return drv_http_error_at(resp, 400, "wrong-type", "env", 0,
			                         "env.%s must be a string", k);
		drover__key_value__init(&h->kv[h->hook.n_env]);
		h->kv[h->hook.n_env].key = (char *)k;
		h->kv[h->hook.n_env].value = (char *)json_string_value(v);
		h->kvp[h->hook.n_env] = &h->kv[h->hook.n_env];
		h->hook.n_env++;
	}
	h->hook.env = h->kvp;
	return DRV_OK;
}

static int queue_reply(struct drv_http_resp *resp, const char *id, const char *step, uint64_t seq,
                       bool fresh)
{
	return drv_http_json(resp, fresh ? 201 : 200,
	                     json_pack("{s:s, s:I, s:s, s:b}", "agent_id", id, "seq",
	                               (json_int_t)seq, "step_id", step, "queued", fresh));
}

static int agent_instruct(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	static const struct drv_json_field fields[] = {
	        {.name = "step_id", .type = DRV_J_STRING, .required = true, .max = 200},
	        {.name = "run", .type = DRV_J_ARRAY, .required = true, .max = HOOK_ARGS_MAX},
	        {.name = "deployment_id", .type = DRV_J_STRING, .max = 200},
	        {.name = "env", .type = DRV_J_OBJECT, .max = HOOK_ENV_MAX},
	        {.name = "timeout_ms", .type = DRV_J_INT},
	        {.name = "ttl_ms", .type = DRV_J_INT},
	};
	const char *id = drv_http_param(req, "id");
	struct dispatch_instr in = {0};
	struct hook_buf h;
	json_t *body;
	uint64_t seq = 0;
	json_int_t timeout, ttl;
	int rc;

	if (drv_http_body_json(req, resp, fields, 6, &body) != DRV_OK)
		return DRV_OK;
	timeout = json_integer_value(json_object_get(body, "timeout_ms"));
	ttl = json_integer_value(json_object_get(body, "ttl_ms"));
	if (timeout < 0 || timeout > 24 * 3600 * 1000 || ttl < 0 || ttl > DISPATCH_TTL_MAX_MS) {
		json_decref(body);
		return drv_http_error(resp, 400, "bad-request",
		                      "timeout_ms or ttl_ms out of range");
	}
	if (hook_from_json(body, &h, resp) != DRV_OK) {
		json_decref(body);
		return DRV_OK;
	}
	in.agent_id = id;
	in.step_id = json_string_value(json_object_get(body, "step_id"));
	in.deployment_id = json_string_value(json_object_get(body, "deployment_id"));
	in.action = DROVER__ACTION__ACTION_RUN_HOOK;
	h.hook.name = (char *)in.step_id;
	h.hook.timeout_ms = (uint32_t)(timeout > 0 ? timeout : 30000);
	in.hook = &h.hook;
	in.ttl_ms = ttl;
	rc = core_queue(ctx, &in, &seq);
	drv_http_audit_note(req, "agent=%s step=%s seq=%llu", id, in.step_id,
	                    (unsigned long long)seq);
	if (rc == DRV_OK || rc == DRV_EEXIST)
		rc = queue_reply(resp, id, in.step_id, seq, rc == DRV_OK);
	else if (rc == DRV_ENOENT)
		rc = drv_http_error(resp, 404, "not-found", "no agent '%s'", id);
	else if (rc == DRV_ESTATE)
		rc = drv_http_error(resp, 409, "not-accepted", "agent '%s' is not accepted", id);
	else if (rc == DRV_EINVAL)
		rc = drv_http_error(resp, 400, "bad-request", "invalid agent id or step id");
	json_decref(body);
	return rc;
}

static const struct drv_http_route routes[] = {
        {.method = "GET",
         .pattern = "/v1/agents",
         .min_role = DRV_ROLE_VIEWER,
         .handler = agents_list},
        {.method = "GET",
         .pattern = "/v1/agents/{id}",
         .min_role = DRV_ROLE_VIEWER,
         .handler = agent_get},
        {.method = "POST",
         .pattern = "/v1/agents/{id}/accept",
         .min_role = DRV_ROLE_ADMIN,
         .handler = agent_accept},
        {.method = "POST",
         .pattern = "/v1/agents/{id}/reject",
         .min_role = DRV_ROLE_ADMIN,
         .handler = agent_reject},
        {.method = "POST",
         .pattern = "/v1/agents/{id}/instructions",
         .min_role = DRV_ROLE_ADMIN,
         .handler = agent_instruct},
        {.method = "POST",
         .pattern = "/v1/agents/{id}/relabel",
         .min_role = DRV_ROLE_ADMIN,
         .handler = agent_relabel},
        {.method = "GET",
         .pattern = "/v1/enroll-tokens",
         .min_role = DRV_ROLE_ADMIN,
         .handler = tokens_list},
        {.method = "POST",
         .pattern = "/v1/enroll-tokens",
         .min_role = DRV_ROLE_ADMIN,
         .handler = token_create},
        {.method = "POST",
         .pattern = "/v1/enroll-tokens/{name}/revoke",
         .min_role = DRV_ROLE_ADMIN,
         .handler = token_revoke},
};

int agents_api_add_routes(struct drv_http_server *srv, struct core *c)
{
	return drv_http_add_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), c);
}

/* ---- metrics ---- */

struct link_metrics {
	struct core *core;
	pthread_mutex_t mu;
	struct drv_linkstats last; /* what was already added to the counters */
	struct drv_metric *stat[DRV_STAT_COUNT];
	struct drv_metric *rejected, *agents;
};

static struct link_metrics lm = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Counters only grow: add what grew since the last scrape. */
static void collect(struct drv_metrics *m, void *ctx)
{
	struct link_metrics *l = ctx;
	struct core_counts n;
	struct drv_linkstats now;

	drv_linkstats_get(&now);
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < DRV_STAT_COUNT; i++)
		drv_counter_add(l->stat[i], (double)(now.v[i] - l->last.v[i]));
	for (size_t i = 0; i < DRV_REJECT_REASONS; i++)
		drv_counter_add(l->rejected, (double)(now.rejected[i] - l->last.rejected[i]),
		                drv_reject_name((Drover__RejectReason)i));
	l->last = now;
	pthread_mutex_unlock(&l->mu);
	core_agent_counts(l->core, &n);
	drv_gauge_set(l->agents, (double)n.pending, "pending");
	drv_gauge_set(l->agents, (double)n.connected, "connected");
	drv_gauge_set(l->agents, (double)n.disconnected, "disconnected");
	drv_gauge_set(l->agents, (double)n.rejected, "rejected");
}

int agents_api_add_metrics(struct drv_metrics *m, struct core *c)
{
	static const char *const reason[] = {"reason", NULL}, *const state[] = {"state", NULL};
	char name[96];
	int rc = DRV_OK;

	lm.core = c;
	for (size_t i = 0; rc == DRV_OK && i < DRV_STAT_COUNT; i++) {
		snprintf(name, sizeof(name), "drover_link_%s_total", drv_stat_name(i));
		rc = drv_metrics_counter(m, name, drv_stat_help(i), NULL, &lm.stat[i]);
	}
	if (rc == DRV_OK)
		rc = drv_metrics_counter(m, "drover_link_rejected_total",
		                         "Link messages refused, by reason.", reason, &lm.rejected);
	if (rc == DRV_OK)
		rc = drv_metrics_gauge(m, "drover_agents", "Agents by state.", state, &lm.agents);
	if (rc == DRV_OK)
		rc = drv_metrics_on_collect(m, collect, &lm);
	return rc;
}
