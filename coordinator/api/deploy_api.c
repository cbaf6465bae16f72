/* deploy_api.c: /v1/deployments: submit, list, show, operator commands. */
#include "deploy_api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy_drift.h"
#include "deploy_hosts.h"
#include "deploy_preview.h"
#include "clock.h"
#include "env_api.h"
#include "env_conf.h"
#include "lifecycle.h"
#include "err.h"
#include "log.h"
#include "oci.h"
#include "outbound.h"
#include "prom_check.h"
#include "traffic_conf.h"
#include "windows.h"

#define SOURCE_MAX    200
#define OVERRIDE_NOTE 400 /* " override window=... reason=..." in the audit note */

/* ---- plan errors: "NAME:LINE: field: message" -> {line, field, message} ---- */

static bool field_like(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && strchr("_.[]-", s[i]) == NULL)
			return false;
	}
	return true;
}

/* A JSON string of n bytes of s; bytes that are not valid UTF-8 become '?'. */
static json_t *text_json(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	char *copy;

	if (j != NULL || (copy = malloc(n + 1)) == NULL)
		return j;
	for (size_t i = 0; i < n; i++)
		copy[i] = (unsigned char)s[i] >= 0x80 || s[i] == '\0' ? '?' : s[i];
	j = json_stringn(copy, n);
	free(copy);
	return j;
}

json_t *deploy_api_plan_error(const char *text, const char *source)
{
	size_t n = strlen(source);
	const char *p = text, *colon;
	json_t *o = json_object();
	long line = 0;

	if (strncmp(p, source, n) == 0 && p[n] == ':')
		p += n + 1;
	if (isdigit((unsigned char)*p)) {
		char *end;
		line = strtol(p, &end, 10);
		if (*end == ':')
			p = end + 1;
		else
			line = 0;
	}
	p += strspn(p, " ");
	colon = strstr(p, ": ");
	if (line > 0)
		json_object_set_new(o, "line", json_integer(line));
	if (colon != NULL && field_like(p, (size_t)(colon - p))) {
		json_object_set_new(o, "field", text_json(p, (size_t)(colon - p)));
		p = colon + 2;
	}
	if (json_object_set_new(o, "message", text_json(p, strlen(p))) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int plan_errors(struct drv_http_resp *resp, unsigned status, const char *code,
                       const struct drv_plan_errors *errs, const char *source)
{
	json_t *list = json_array(), *first, *body;
	char msg[512];

	for (size_t i = 0; list != NULL && i < errs->n; i++)
		json_array_append_new(list, deploy_api_plan_error(errs->v[i], source));
	first = json_array_get(list, 0);
	if (errs->n == 1 && first != NULL)
		snprintf(msg, sizeof(msg), "%s",
		         json_string_value(json_object_get(first, "message")));
	else
		snprintf(msg, sizeof(msg), "plan has %zu errors", errs->n);
	body = drv_http_error_body(code, msg, json_string_value(json_object_get(first, "field")),
	                           (int)json_integer_value(json_object_get(first, "line")));
	if (body == NULL || list == NULL) {
		json_decref(body);
		json_decref(list);
		return DRV_ENOMEM;
	}
	json_object_set_new(json_object_get(body, "error"), "errors", list);
	return drv_http_json(resp, status, body);
}

/* ---- POST /v1/deployments ---- */

static int resolve_tag(void *arg, const char *reference, char digest[], size_t cap, char *why,
                       size_t why_cap)
{
	const struct drv_oci_opts *opts = arg;
	char d[DRV_DIGEST_STR];
	int rc = drv_oci_resolve(reference, opts, d, why, why_cap);

	if (rc == DRV_OK)
		snprintf(digest, cap, "%s", d);
	return rc;
}

static bool source_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SOURCE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isprint((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* The plan, its variables filled in from its environment (its own
 * `environment`, or ?env=) and its own vars. */
static int parse_plan(struct deploy_api *api, struct drv_http_req *req, struct drv_http_resp *resp,
                      const char *source, struct drv_plan **plan)
{
	static const struct drv_plan_envs none = {0};
	struct drv_plan_errors errs = {0};
	size_t len;
	const char *body = drv_http_body(req, &len);
	const char *env = drv_http_query(req, "env");
	int rc;

	if (env != NULL && !source_ok(env))
		return drv_http_error_at(resp, 400, "bad-request", "env", 0,
		                         "env must be 1 to %d printable characters",
		                         SOURCE_MAX) == DRV_OK
		               ? DRV_EINVAL
		               : DRV_ENOMEM;
	rc = drv_plan_parse_buffer_env(
	        body, len, source, api->environments ? api->environments : &none, env, plan, &errs);

	if (rc == DRV_ETOOBIG)
		drv_http_error(resp, 413, "too-large", "the plan is too large");
	else if (rc == DRV_EINVAL)
		rc = plan_errors(resp, 400, "invalid-plan", &errs, source) == DRV_OK ? DRV_EINVAL
		                                                                     : DRV_ENOMEM;
	drv_plan_errors_free(&errs);
	return rc;
}

/* Every balancer the plan names must be one droverd.yaml defines: a plan
 * names traffic switches, it never says how to reach one. */
static int check_balancers(struct deploy_api *api, struct drv_http_resp *resp,
                           const struct drv_plan *plan)
{
	for (size_t i = 0; i < plan->n_services; i++) {
		const struct drv_plan_service *ps = &plan->services[i];
		const struct drv_plan_traffic *tr = &ps->strategy.traffic;
		size_t t = ps->tier;
		char field[160];

		if (tr->kind != DRV_TRAFFIC_BALANCER ||
		    drv_traffic_balancer_find(api->balancers, tr->balancer) != NULL)
			continue;
		snprintf(field, sizeof(field), "tiers[%zu].services[%zu].strategy.traffic.balancer",
		         t, i - plan->tiers[t].first);
		drv_http_error_at(
		        resp, 422, "unknown-balancer", field, tr->line,
		        "%s: no balancer named '%s' in droverd.yaml (balancers: %zu defined)",
		        field, tr->balancer, api->balancers ? api->balancers->n : 0);
		return DRV_EINVAL;
	}
	return DRV_OK;
}

/* Every URL the plan makes droverd request (webhooks, analysis.http) is
 * one droverd.yaml allows: plans are written by deployers, and droverd
 * reaches places they should not (outbound.h). */
static int check_outbound(struct deploy_api *api, struct drv_http_resp *resp,
                          const struct drv_plan *plan)
{
	char field[160];
	const char *url = NULL;

	if (drv_outbound_check_plan(api->outbound_allow, plan, field, sizeof(field), &url) ==
	    DRV_OK)
		return DRV_OK;
	drv_http_error_at(resp, 422, "outbound-not-allowed", field, 0,
	                  "%s: droverd may not request '%s': no prefix of droverd.yaml "
	                  "outbound.allow (%zu entries) covers it",
	                  field, url, api->outbound_allow ? api->outbound_allow->n : 0);
	return DRV_EINVAL;
}

/* Servers the analysis names exist; Prometheus parses its queries. */
static int check_analysis(struct deploy_api *api, struct drv_http_resp *resp,
                          const struct drv_plan *plan)
{
	struct drv_prom_problem pb;
	int rc = drv_prom_check_plan(api->prometheus, plan, &pb);

	if (rc == DRV_EINVAL)
		drv_http_error_at(resp, (unsigned)pb.status, pb.code, pb.field, pb.line, "%s",
		                  pb.message);
	return rc;
}

static int pin_images(struct deploy_api *api, struct drv_http_resp *resp, struct drv_plan *plan,
                      const char *source)
{
	struct drv_oci_opts opts = {
	        .insecure = api->insecure_registry, .stall_s = 10, .connect_timeout_s = 5};
	struct drv_plan_errors errs = {0};
	int rc = drv_plan_resolve_digests(plan, resolve_tag, &opts, &errs);

	if (rc != DRV_OK && rc != DRV_ENOMEM)
		rc = plan_errors(resp, 422, "unresolved-image", &errs, source) == DRV_OK
		             ? DRV_EINVAL
		             : DRV_ENOMEM;
	drv_plan_errors_free(&errs);
	return rc;
}

/* An environment's label selector restricts the hosts its plans reach:
 * an agent outside it is not a candidate (deploy_hosts.h). */
static void fence(const struct drv_plan_envs *envs, const struct drv_plan *plan, json_t *agents)
{
	const struct drv_plan_env *env = drv_envs_find(envs, plan->environment);
	struct drv_plan_hosts sel = {0};
	json_t *a;
	size_t i;

	if (env == NULL || env->n_labels == 0)
		return;
	sel.labels = env->labels;
	sel.n_labels = env->n_labels;
	json_array_foreach(agents, i, a)
	{
		struct drv_plan_kv kv[64];
		size_t n = 0;
		const char *k;
		json_t *v;

		json_object_foreach(json_object_get(a, "labels"), k, v)
		{
			if (n < 64 && json_is_string(v)) {
				kv[n].key = (char *)k;
				kv[n++].value = (char *)json_string_value(v);
			}
		}
		if (!drv_plan_hosts_match(&sel, "", kv, n))
			json_object_set_new(a, "status", json_string(DEPLOY_HOSTS_OUTSIDE));
	}
}

static int find_targets(struct deploy_api *api, struct drv_http_resp *resp, struct drv_plan *plan,
                        json_t **targets)
{
	struct deploy_hosts_err err;
	json_t *agents;
	int rc = core_agents_brief_json(api->core, &agents);

	if (rc != DRV_OK)
		return rc;
	fence(api->environments, plan, agents);
	rc = deploy_hosts_resolve(plan, agents, targets, &err);
	if (rc == DRV_OK && deploy_hosts_check_privs(plan, agents, *targets, &err) != DRV_OK) {
		json_decref(*targets);
		*targets = NULL;
		json_decref(agents);
		drv_http_error_at(resp, 422, "agent-too-old", err.field, err.line, "%s: %s",
		                  err.field, err.message);
		return DRV_EINVAL;
	}
	json_decref(agents);
	if (rc == DRV_ENOENT) {
		drv_http_error_at(resp, 422, "unknown-hosts", err.field, err.line, "%s: %s",
		                  err.field, err.message);
		return DRV_EINVAL;
	}
	return rc;
}

/* 409 naming the running deployment that holds the name or the service. */
static int refuse_busy(struct drv_http_req *req, struct drv_http_resp *resp,
                       const struct drv_plan *plan, const struct deploy_busy *b)
{
	drv_http_audit_note(req, "deployment=%s busy=%s service=%s agent=%s", plan->deployment,
	                    b->id, b->service, b->agent);
	if (b->service[0] == '\0')
		drv_http_error(resp, 409, "busy", "deployment %s of %s is still active", b->id,
		               plan->deployment);
	else
		drv_http_error(resp, 409, "busy",
		               "service %s on %s is being deployed by deployment %s (%s); one "
		               "deployment per service at a time",
		               b->service, b->agent, b->id, b->name);
	return DRV_EEXIST;
}

/* from: the deployment a promotion copies (NULL: a plan submitted);
 * override: an admin overrode a window (the deployment is neither queued
 * nor paused by windows). */
static int submit(struct deploy_api *api, struct drv_http_req *req, struct drv_http_resp *resp,
                  struct drv_plan *plan, const char *overridden, const char *from, bool override)
{
	struct deploy_busy busy;
	json_t *targets = NULL, *obj = NULL;
	int rc = find_targets(api, resp, plan, &targets);

	if (rc != DRV_OK)
		return rc;
	rc = deploy_engine_submit_opts(api->engine, plan, targets, drv_http_actor(req), from,
	                               override, &obj, &busy);
	json_decref(targets);
	if (rc == DRV_EEXIST)
		return refuse_busy(req, resp, plan, &busy);
	if (rc == DRV_EPERM) {
		drv_http_audit_note(req, "deployment=%s alerts=firing", plan->deployment);
		drv_http_error(resp, 409, "alerts-firing",
		               "%s: not started while a matching alert fires (alert_precheck)",
		               busy.why);
		return DRV_EEXIST;
	}
	if (rc != DRV_OK)
		return rc;
	drv_http_audit_note(req, "deployment=%s name=%s version=%s%s%s%s",
	                    json_string_value(json_object_get(obj, "id")), plan->deployment,
	                    plan->version, from ? " promoted_from=" : "", from ? from : "",
	                    overridden);
	return drv_http_json(resp, 201, obj);
}

/* The engine, or NULL on a follower (deploy_api.h). */
static struct deploy_engine *engine_of(struct deploy_api *api)
{
	return __atomic_load_n(&api->engine, __ATOMIC_ACQUIRE);
}

/* Blue-green across host sets: a dry run goes to the set a deployment
 * started now would (the live set from the store; on a follower, which
 * has no engine, as if none were live). */
static int dry_run_sets(struct deploy_api *api, const struct drv_plan *plan, json_t *targets,
                        char *why, size_t cap)
{
	struct deploy_engine *e = engine_of(api);
	json_t *live = NULL;
	int rc = DRV_OK;

	if (json_object_get(targets, "sets") == NULL)
		return DRV_OK;
	if (e != NULL)
		rc = deploy_engine_live_sets(e, plan, &live);
	if (rc == DRV_OK)
		rc = deploy_hosts_choose_sets(plan, targets, live, why, cap);
	else
		snprintf(why, cap, "cannot read which host set is live: %s", drv_strerror(rc));
	json_decref(live);
	return rc == DRV_ENOMEM || rc == DRV_OK ? rc : DRV_ESTATE;
}

/* ?dry_run=true: what the plan would do, resolved against the live fleet
 * exactly as a submission is (images to digests, hosts to agents), with
 * nothing created, sent or stored (deploy_preview.h). */
static int dry_run(struct deploy_api *api, struct drv_http_req *req, struct drv_http_resp *resp,
                   struct drv_plan *plan)
{
	char why[DRV_SEQ_TEXT_MAX] = "";
	json_t *targets = NULL, *agents = NULL, *out = NULL;
	int rc = find_targets(api, resp, plan, &targets);

	if (rc != DRV_OK)
		return rc;
	rc = dry_run_sets(api, plan, targets, why, sizeof(why));
	if (rc == DRV_OK)
		rc = core_agents_json(api->core, &agents);
	if (rc == DRV_OK)
		rc = deploy_preview(plan, targets, agents, &out, why, sizeof(why));
	json_decref(targets);
	json_decref(agents);
	drv_http_audit_note(req, "dry_run name=%s version=%s", plan->deployment, plan->version);
	if (rc == DRV_EINVAL || rc == DRV_ESTATE) {
		drv_http_error(resp, 422, "cannot-run", "the plan cannot run: %s", why);
		return DRV_EINVAL;
	}
	if (rc != DRV_OK)
		return rc;
	return drv_http_json(resp, 200, out);
}

static int dry_run_arg(struct drv_http_req *req, struct drv_http_resp *resp, bool *on)
{
	const char *v = drv_http_query(req, "dry_run");

	*on = false;
	if (v == NULL || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		return DRV_OK;
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
		*on = true;
		return DRV_OK;
	}
	drv_http_error_at(resp, 400, "bad-request", "dry_run", 0, "dry_run must be true or false");
	return DRV_EINVAL;
}

/* A deployment window of the plan's environment that is open now (or, with
 * allow windows, none of them open) refuses it (409 naming the window),
 * unless an admin overrides with a reason (?override=REASON), which the
 * audit log keeps, or the plan says queue: true (the engine queues it). */
static int check_windows(struct deploy_api *api, struct drv_http_req *req,
                         struct drv_http_resp *resp, const struct drv_plan *plan,
                         char overridden[OVERRIDE_NOTE])
{
	const struct drv_plan_env *env = drv_envs_find(api->environments, plan->environment);
	const char *why = drv_http_query(req, "override");
	const struct drv_window *w;
	char text[512], where[600];
	bool outside;

	if (env == NULL || (w = drv_windows_blocking(env->windows, env->n_windows,
	                                             drv_wall_ms() / 1000, &outside)) == NULL)
		return DRV_OK;
	drv_window_describe(w, text, sizeof(text));
	if (outside)
		snprintf(where, sizeof(where),
		         "environment %s is outside its allowed deployment windows (%s)", env->name,
		         text);
	else
		snprintf(where, sizeof(where), "environment %s is in deployment window %s",
		         env->name, text);
	if (why != NULL && why[0] != '\0' && source_ok(why) &&
	    drv_http_role(req) >= DRV_ROLE_ADMIN) {
		snprintf(overridden, OVERRIDE_NOTE, " override window=%s environment=%s reason=%s",
		         w->name, env->name, why);
		drv_http_audit_note(req, "%s", overridden + 1);
		drv_warn("deploy", "deployment window overridden",
		         "environment=%s window=%s reason=\"%s\"", env->name, w->name, why);
		return DRV_OK;
	}
	if (why == NULL && plan->queue) {
		drv_http_audit_note(req, "deployment=%s queued window=%s environment=%s",
		                    plan->deployment, w->name, env->name);
		return DRV_OK; /* the engine queues it until the window allows */
	}
	drv_http_audit_note(req, "deployment=%s refused window=%s environment=%s", plan->deployment,
	                    w->name, env->name);
	if (why != NULL)
		drv_http_error(resp, 403, "forbidden",
		               "%s; only an admin may override it, with a reason of 1 to %d "
		               "printable characters",
		               where, SOURCE_MAX);
	else
		drv_http_error(resp, 409, "window",
		               "%s; an admin may override with ?override=REASON, or the plan may "
		               "say queue: true",
		               where);
	return DRV_EINVAL;
}

/* ---- lifecycles (docs/environments.md "Promotion") ---- */

/* An environment with a phase before it in its lifecycle accepts only a
 * release that succeeded there: 409 lifecycle otherwise, unless an admin
 * overrides with a reason (?override=REASON, audited). */
static int check_lifecycle(struct deploy_api *api, struct drv_http_req *req,
                           struct drv_http_resp *resp, const struct drv_plan *plan,
                           char overridden[OVERRIDE_NOTE])
{
	const struct drv_lifecycle *lc;
	const char *prev = drv_lifecycle_previous(api->lifecycles, plan->environment, &lc);
	const char *why = drv_http_query(req, "override");
	char rid[DRV_PLAN_RELEASE_ID_MAX], seen[DRV_SEQ_ID_MAX + 1], phases[1200];
	json_t *rel;
	int rc;

	if (prev == NULL)
		return DRV_OK;
	if ((rel = drv_plan_release(plan)) == NULL)
		return DRV_ENOMEM;
	rc = drv_plan_release_id(rel, rid);
	json_decref(rel);
	if (rc == DRV_OK)
		rc = deploy_engine_release_succeeded(api->engine, prev, rid, seen);
	if (rc == DRV_OK)
		return DRV_OK;
	if (rc != DRV_ENOENT)
		return rc;
	drv_lifecycle_describe(lc, phases, sizeof(phases));
	if (why != NULL && why[0] != '\0' && source_ok(why) &&
	    drv_http_role(req) >= DRV_ROLE_ADMIN) {
		size_t used = strlen(overridden);

		snprintf(overridden + used, OVERRIDE_NOTE - used,
		         " override lifecycle=%s release=%s reason=%s", lc->name, rid, why);
		drv_warn("deploy", "lifecycle overridden",
		         "lifecycle=%s release=%s environment=%s reason=\"%s\"", lc->name, rid,
		         plan->environment, why);
		return DRV_OK;
	}
	drv_http_audit_note(req, "deployment=%s refused lifecycle=%s release=%s environment=%s",
	                    plan->deployment, lc->name, rid, plan->environment);
	drv_http_error(resp, why != NULL ? 403 : 409, why != NULL ? "forbidden" : "lifecycle",
	               "release %s has not succeeded in %s: %s accepts only releases that did "
	               "(lifecycle %s: %s); deploy it to %s first, or promote a deployment "
	               "that succeeded there (drover promote-release ID --to %s)%s",
	               rid, prev, plan->environment, lc->name, phases, prev, plan->environment,
	               why != NULL ? "; only an admin may override, with a reason" : "");
	return DRV_EINVAL;
}

static int deployments_create(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	struct deploy_api *api = ctx;
	const char *source = drv_http_query(req, "source");
	char overridden[OVERRIDE_NOTE] = "";
	struct drv_plan *plan = NULL;
	bool preview, window_override;
	int rc;

	if (dry_run_arg(req, resp, &preview) != DRV_OK)
		return DRV_OK;

	if (source == NULL)
		source = "plan";
	if (!source_ok(source))
		return drv_http_error_at(resp, 400, "bad-request", "source", 0,
		                         "source must be 1 to %d printable characters", SOURCE_MAX);
	rc = parse_plan(api, req, resp, source, &plan);
	if (rc == DRV_OK && !preview)
		rc = check_windows(api, req, resp, plan, overridden);
	window_override = overridden[0] != '\0'; /* not a lifecycle's override */
	if (rc == DRV_OK)
		rc = check_balancers(api, resp, plan);
	if (rc == DRV_OK)
		rc = check_outbound(api, resp, plan);
	if (rc == DRV_OK)
		rc = check_analysis(api, resp, plan);
	if (rc == DRV_OK)
		rc = pin_images(api, resp, plan, source);
	if (rc == DRV_OK && !preview)
		rc = check_lifecycle(api, req, resp, plan, overridden);
	if (rc == DRV_OK && preview) {
		rc = dry_run(api, req, resp, plan);
		drv_plan_free(plan);
		plan = NULL;
	} else if (rc == DRV_OK) {
		rc = submit(api, req, resp, plan, overridden, NULL, window_override);
	}
	if (rc != DRV_OK)
		drv_plan_free(plan); /* on success the engine owns it */
	if (rc == DRV_EINVAL || rc == DRV_EEXIST || rc == DRV_ETOOBIG)
		return DRV_OK; /* the answer is set */
	return rc;
}

/* ---- GET ---- */

void deploy_api_set_engine(struct deploy_api *api, struct deploy_engine *e)
{
	__atomic_store_n(&api->engine, e, __ATOMIC_RELEASE);
}

static int deployments_list(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	struct deploy_api *api = ctx;
	struct deploy_engine *e = engine_of(api);
	long long limit;
	json_t *out, *arr;
	int rc;

	if (drv_http_query_int(req, resp, "limit", 1, 1000, 50, &limit) != DRV_OK)
		return DRV_OK;
	if (e != NULL) {
		rc = deploy_engine_list(e, (int)limit, &out);
	} else {
		drv_sql_lock(api->db);
		rc = deploy_store_list(api->db, (int)limit, &arr);
		drv_sql_unlock(api->db);
		if (rc == DRV_OK && (out = json_pack("{s:o}", "deployments", arr)) == NULL)
			rc = DRV_ENOMEM;
	}
	if (rc != DRV_OK)
		return rc;
	return drv_http_json(resp, 200, out);
}

/*
 * One deployment as the engine shows it. On a follower: a finished one
 * from the view saved when it ended; one still running lives in the
 * leader's memory, so the request goes there (*answered: resp is set).
 */
static int deployment_obj(struct deploy_api *api, struct drv_http_req *req,
                          struct drv_http_resp *resp, const char *id, json_t **obj, bool *answered)
{
	struct deploy_engine *e = engine_of(api);
	struct deploy_row r;
	int rc;

	*answered = false;
	if (strlen(id) > DRV_SEQ_ID_MAX)
		return DRV_ENOENT;
	if (e != NULL)
		return deploy_engine_get(e, id, obj);
	drv_sql_lock(api->db);
	rc = deploy_store_get(api->db, id, &r);
	drv_sql_unlock(api->db);
	if (rc != DRV_OK)
		return rc;
	if (r.view == NULL || (*obj = json_loads(r.view, 0, NULL)) == NULL) {
		*answered = true;
		rc = drv_http_to_leader(req, resp);
	}
	deploy_row_clear(&r);
	return rc;
}

static int deployment_get(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	struct deploy_api *api = ctx;
	const char *id = drv_http_param(req, "id");
	json_t *obj;
	bool answered;
	int rc = deployment_obj(api, req, resp, id, &obj, &answered);

	if (answered)
		return rc;
	if (rc == DRV_ENOENT)
		return drv_http_error(resp, 404, "not-found", "no deployment '%s'", id);
	if (rc != DRV_OK)
		return rc;
	return drv_http_json(resp, 200, obj);
}

/* GET /v1/deployments/{id}/baseline: the release's key metrics against
 * the previous release's (docs/api.md); recorded: the deployment succeeded,
 * so these values are the baseline the next release is compared with. */
static int baseline_get(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	struct deploy_api *api = ctx;
	const char *id = drv_http_param(req, "id");
	json_t *obj, *out, *m;
	const char *st;
	bool answered;
	int rc = deployment_obj(api, req, resp, id, &obj, &answered);

	if (answered)
		return rc;
	if (rc == DRV_ENOENT)
		return drv_http_error(resp, 404, "not-found", "no deployment '%s'", id);
	if (rc != DRV_OK)
		return rc;
	st = json_string_value(json_object_get(obj, "state"));
	m = json_object_get(obj, "baseline");
	out = json_pack("{s:O, s:O, s:O, s:O, s:b, s:o}", "id", json_object_get(obj, "id"),
	                "deployment", json_object_get(obj, "deployment"), "version",
	                json_object_get(obj, "version"), "state", json_object_get(obj, "state"),
	                "recorded", st != NULL && strcmp(st, "succeeded") == 0 && m != NULL,
	                "metrics", m ? json_incref(m) : json_array());
	if (out != NULL && json_object_get(obj, "environment") != NULL)
		json_object_set(out, "environment", json_object_get(obj, "environment"));
	json_decref(obj);
	return drv_http_json(resp, 200, out);
}

/* ---- drift ---- */

static int drift_now(struct deploy_api *api, json_t **baseline, json_t **drift)
{
	struct deploy_engine *e = engine_of(api);
	json_t *agents = NULL;
	int rc;

	if (e != NULL) {
		rc = deploy_engine_baseline(e, baseline);
	} else { /* a follower: the store is the same, read on this connection */
		drv_sql_lock(api->db);
		rc = deploy_drift_baseline(api->db, baseline);
		drv_sql_unlock(api->db);
	}

	if (rc == DRV_OK)
		rc = core_agents_json(api->core, &agents);
	if (rc == DRV_OK && (*drift = deploy_drift_compute(*baseline, agents)) == NULL)
		rc = DRV_ENOMEM;
	json_decref(agents);
	if (rc != DRV_OK) {
		json_decref(*baseline);
		*baseline = NULL;
	}
	return rc;
}

static int drift_get(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	json_t *baseline = NULL, *drift = NULL;
	int rc = drift_now(ctx, &baseline, &drift);

	(void)req;
	json_decref(baseline);
	if (rc != DRV_OK)
		return rc;
	return drv_http_json(resp, 200, drift);
}

/* One converge plan: parsed, resolved to hosts, submitted like a plan. */
static int converge_one(struct deploy_api *api, struct drv_http_req *req,
                        struct drv_http_resp *resp, const json_t *pj, json_t *out)
{
	struct drv_plan_errors errs = {0};
	struct drv_plan *plan = NULL;
	struct deploy_busy busy = {0};
	json_t *targets = NULL, *obj = NULL;
	int rc = drv_plan_from_json(pj, NULL, "converge", &plan, &errs);

	if (rc != DRV_OK) {
		drv_plan_errors_free(&errs);
		return drv_http_error(resp, 409, "conflict",
		                      "the last successful plan no longer validates: %s",
		                      errs.n ? errs.v[0] : drv_strerror(rc)),
		       DRV_EINVAL;
	}
	/* A converge is a deployment: a window of its environment refuses it too. */
	{
		char overridden[OVERRIDE_NOTE] = "";

		rc = check_windows(api, req, resp, plan, overridden);
		if (rc != DRV_OK) {
			drv_plan_free(plan);
			return rc;
		}
	}
	rc = find_targets(api, resp, plan, &targets);
	if (rc == DRV_OK)
		rc = deploy_engine_submit(api->engine, plan, targets, drv_http_actor(req), &obj,
		                          &busy);
	json_decref(targets);
	if (rc == DRV_EEXIST || rc == DRV_EPERM) {
		if (rc == DRV_EEXIST)
			refuse_busy(req, resp, plan, &busy);
		else
			drv_http_error(resp, 409, "alerts-firing",
			               "%s: not started while a matching alert fires", busy.why);
		drv_plan_free(plan);
		return DRV_EINVAL;
	}
	if (rc != DRV_OK) {
		drv_plan_free(plan);
		return rc;
	}
	drv_http_audit_note(req, "converge deployment=%s",
	                    json_string_value(json_object_get(obj, "id")));
	json_array_append_new(out, obj);
	return DRV_OK;
}

/* POST /v1/converge {"service": S} or {"all": true}: re-apply the last
 * successful release of S (or of every drifted service) to its drifted
 * hosts, with the service's strategy and gates: 201 {"deployments": [...]}. */
static int converge(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	static const struct drv_json_field fields[] = {
	        {.name = "service", .type = DRV_J_STRING, .max = 64},
	        {.name = "all", .type = DRV_J_BOOL},
	};
	struct deploy_api *api = ctx;
	json_t *body, *baseline = NULL, *drift = NULL, *plans = NULL, *out, *p;
	const char *service;
	char why[200];
	size_t i;
	int rc;

	if (drv_http_body_json(req, resp, fields, 2, &body) != DRV_OK)
		return DRV_OK;
	service = json_string_value(json_object_get(body, "service"));
	if ((service == NULL) == !json_is_true(json_object_get(body, "all"))) {
		json_decref(body);
		return drv_http_error_at(resp, 400, "bad-request", "service", 0,
		                         "name a service, or all: true");
	}
	rc = drift_now(api, &baseline, &drift);
	if (rc == DRV_OK)
		rc = deploy_drift_converge_plans(baseline, drift, service, &plans, why,
		                                 sizeof(why));
	json_decref(body);
	json_decref(baseline);
	json_decref(drift);
	if (rc == DRV_ENOENT)
		return drv_http_error(resp, 409, "no-drift", "%s", why);
	if (rc != DRV_OK)
		return rc;
	out = json_array();
	json_array_foreach(plans, i, p)
	{
		rc = converge_one(api, req, resp, p, out);
		if (rc != DRV_OK)
			break;
	}
	json_decref(plans);
	if (rc != DRV_OK) {
		json_decref(out);
		return rc == DRV_EINVAL ? DRV_OK : rc;
	}
	return drv_http_json(resp, 201, json_pack("{s:o}", "deployments", out));
}

static struct deploy_api *metrics_api;
static struct drv_metric *drift_gauge;

static void drift_collect(struct drv_metrics *m, void *ctx)
{
	json_t *baseline = NULL, *drift = NULL;

	(void)m;
	(void)ctx;
	if (metrics_api == NULL || drift_now(metrics_api, &baseline, &drift) != DRV_OK)
		return;
	drv_gauge_set(drift_gauge,
	              (double)json_integer_value(json_object_get(drift, "drifted_hosts")));
	json_decref(baseline);
	json_decref(drift);
}

int deploy_api_add_metrics(struct drv_metrics *m, struct deploy_api *api)
{
	int rc = drv_metrics_gauge(m, "drover_drift_hosts",
	                           "Hosts that differ from the last successful deployment of a "
	                           "service they run (drover drift).",
	                           NULL, &drift_gauge);

	metrics_api = api;
	if (rc == DRV_OK)
		rc = drv_metrics_on_collect(m, drift_collect, NULL);
	return rc;
}

/* ---- operator commands ---- */

static int verb(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx, enum deploy_verb v)
{
	static const struct drv_json_field fields[] = {
	        {.name = "reason", .type = DRV_J_STRING, .max = 256},
	};
	struct deploy_api *api = ctx;
	const char *id = drv_http_param(req, "id");
	char why[DRV_SEQ_TEXT_MAX] = "";
	json_t *body, *obj;
	int rc;

	if (drv_http_body_json(req, resp, fields, 1, &body) != DRV_OK)
		return DRV_OK;
	json_decref(body);
	drv_http_audit_note(req, "deployment=%s verb=%s", id, deploy_verb_name(v));
	rc = strlen(id) <= DRV_SEQ_ID_MAX
	             ? deploy_engine_verb(api->engine, id, v, drv_http_actor(req), &obj, why)
	             : DRV_ENOENT;
	if (rc == DRV_ENOENT)
		return drv_http_error(resp, 404, "not-found", "no deployment '%s'", id);
	if (rc == DRV_ESTATE)
		return drv_http_error(resp, 409, "state", "%s", why);
	if (rc != DRV_OK)
		return rc;
	return drv_http_json(resp, 200, obj);
}

static int dep_pause(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	return verb(req, resp, ctx, DEPLOY_PAUSE);
}

static int dep_resume(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	return verb(req, resp, ctx, DEPLOY_RESUME);
}

static int dep_promote(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	return verb(req, resp, ctx, DEPLOY_PROMOTE);
}

static int dep_abort(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	return verb(req, resp, ctx, DEPLOY_ABORT);
}

static int dep_rollback(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	return verb(req, resp, ctx, DEPLOY_ROLLBACK);
}

/* ---- POST /v1/deployments/{id}/promote-release {"to": ENV} ---- */

/* The deployment to promote must have succeeded, carry a release, and sit
 * in the phase before `to` when `to` has one in its lifecycle. */
static int promotable(struct deploy_api *api, struct drv_http_resp *resp, const json_t *src,
                      const char *to)
{
	const char *id = json_string_value(json_object_get(src, "id"));
	const char *state = json_string_value(json_object_get(src, "state"));
	const char *from = json_string_value(json_object_get(src, "environment"));
	const struct drv_lifecycle *lc;
	const char *prev = drv_lifecycle_previous(api->lifecycles, to, &lc);
	char phases[1200];

	if (from == NULL || from[0] == '\0')
		from = "(no environment)";
	if (strcmp(state, "succeeded") != 0)
		return drv_http_error(
		               resp, 409, "not-succeeded",
		               "deployment %s of release %s is %s in %s: only a release that "
		               "succeeded there can be promoted",
		               id, json_string_value(json_object_get(src, "release_id")), state,
		               from),
		       DRV_EINVAL;
	if (!json_is_object(json_object_get(src, "release")))
		return drv_http_error(resp, 409, "no-release",
		                      "deployment %s has no release to promote (a converge, or a "
		                      "deployment made before releases were recorded)",
		                      id),
		       DRV_EINVAL;
	if (strcmp(from, to) == 0)
		return drv_http_error_at(resp, 400, "bad-request", "to", 0,
		                         "deployment %s went to %s already; promote it to another "
		                         "environment",
		                         id, to),
		       DRV_EINVAL;
	if (prev == NULL || strcmp(prev, from) == 0)
		return DRV_OK;
	drv_lifecycle_describe(lc, phases, sizeof(phases));
	return drv_http_error(resp, 409, "lifecycle",
	                      "%s accepts releases promoted from %s (lifecycle %s: %s); "
	                      "deployment %s went to %s",
	                      to, prev, lc->name, phases, id, from),
	       DRV_EINVAL;
}

/* The release of src as a plan for environment to, with to's variables. */
static int release_plan(struct deploy_api *api, struct drv_http_resp *resp, const json_t *src,
                        const char *to, struct drv_plan **plan)
{
	static const struct drv_plan_envs none = {0};
	const char *rid = json_string_value(json_object_get(src, "release_id"));
	struct drv_plan_errors errs = {0};
	char name[DRV_SEQ_ID_MAX + 16], again[DRV_PLAN_RELEASE_ID_MAX];
	json_t *rel;
	int rc;

	snprintf(name, sizeof(name), "release of %s",
	         json_string_value(json_object_get(src, "id")));
	rc = drv_plan_from_release(json_object_get(src, "release"), name,
	                           api->environments ? api->environments : &none, to, plan, &errs);
	if (rc == DRV_EINVAL)
		rc = plan_errors(resp, 400, "invalid-plan", &errs, name) == DRV_OK ? DRV_EINVAL
		                                                                   : DRV_ENOMEM;
	drv_plan_errors_free(&errs);
	if (rc != DRV_OK)
		return rc;
	/* the same bytes: the plan made from the release is that release */
	rel = drv_plan_release(*plan);
	rc = rel ? drv_plan_release_id(rel, again) : DRV_ENOMEM;
	json_decref(rel);
	if (rc == DRV_OK && strcmp(again, rid) != 0) {
		drv_error("deploy", "a promoted release changed", "release=%s now=%s", rid, again);
		rc = DRV_EIO;
	}
	if (rc != DRV_OK) {
		drv_plan_free(*plan);
		*plan = NULL;
	}
	return rc;
}

static int promote_release(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	static const struct drv_json_field fields[] = {
	        {.name = "to", .type = DRV_J_STRING, .max = DRV_PLAN_NAME_MAX, .required = true},
	};
	struct deploy_api *api = ctx;
	const char *id = drv_http_param(req, "id");
	char overridden[OVERRIDE_NOTE] = "", to[DRV_PLAN_NAME_MAX + 1], note[OVERRIDE_NOTE + 200];
	struct drv_plan *plan = NULL;
	json_t *body, *src = NULL;
	int rc;

	if (drv_http_body_json(req, resp, fields, 1, &body) != DRV_OK)
		return DRV_OK;
	snprintf(to, sizeof(to), "%s", json_string_value(json_object_get(body, "to")));
	json_decref(body);
	drv_http_audit_note(req, "promote-release deployment=%s to=%s", id, to);
	rc = strlen(id) <= DRV_SEQ_ID_MAX ? deploy_engine_release(api->engine, id, &src)
	                                  : DRV_ENOENT;
	if (rc == DRV_ENOENT)
		return drv_http_error(resp, 404, "not-found", "no deployment '%s'", id);
	if (rc == DRV_OK)
		rc = promotable(api, resp, src, to);
	if (rc == DRV_OK)
		rc = release_plan(api, resp, src, to, &plan);
	if (rc == DRV_OK)
		rc = check_windows(api, req, resp, plan, overridden);
	if (rc == DRV_OK)
		rc = check_balancers(api, resp, plan);
	if (rc == DRV_OK)
		rc = check_analysis(api, resp, plan);
	if (rc == DRV_OK) {
		snprintf(note, sizeof(note), " release=%s from=%s to=%s%s",
		         json_string_value(json_object_get(src, "release_id")),
		         json_string_value(json_object_get(src, "environment")), to, overridden);
		rc = submit(api, req, resp, plan, note, id, overridden[0] != '\0');
	}
	json_decref(src);
	if (rc != DRV_OK)
		drv_plan_free(plan); /* on success the engine owns it */
	if (rc == DRV_EINVAL || rc == DRV_EEXIST || rc == DRV_ETOOBIG)
		return DRV_OK; /* the answer is set */
	return rc;
}

#define ROUTE(m, p, r, h)                                                                          \
	{                                                                                          \
		.method = m, .pattern = p, .min_role = r, .handler = h                             \
	}

static const struct drv_http_route routes[] = {
        ROUTE("POST", "/v1/deployments", DRV_ROLE_DEPLOYER, deployments_create),
        ROUTE("GET", "/v1/deployments", DRV_ROLE_VIEWER, deployments_list),
        ROUTE("GET", "/v1/deployments/{id}", DRV_ROLE_VIEWER, deployment_get),
        ROUTE("GET", "/v1/deployments/{id}/baseline", DRV_ROLE_VIEWER, baseline_get),
        ROUTE("POST", "/v1/deployments/{id}/pause", DRV_ROLE_DEPLOYER, dep_pause),
        ROUTE("POST", "/v1/deployments/{id}/resume", DRV_ROLE_DEPLOYER, dep_resume),
        ROUTE("POST", "/v1/deployments/{id}/promote", DRV_ROLE_DEPLOYER, dep_promote),
        ROUTE("POST", "/v1/deployments/{id}/abort", DRV_ROLE_DEPLOYER, dep_abort),
        ROUTE("POST", "/v1/deployments/{id}/rollback", DRV_ROLE_DEPLOYER, dep_rollback),
        ROUTE("POST", "/v1/deployments/{id}/promote-release", DRV_ROLE_DEPLOYER, promote_release),
        ROUTE("GET", "/v1/drift", DRV_ROLE_VIEWER, drift_get),
        ROUTE("POST", "/v1/converge", DRV_ROLE_DEPLOYER, converge),
};

int deploy_api_add_routes(struct drv_http_server *srv, struct deploy_api *api)
{
	int rc = drv_http_add_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), api);

	return rc == DRV_OK ? env_api_add_routes(srv, api) : rc;
}
