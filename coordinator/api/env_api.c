/*
 * env_api.c: environments and approvals over the API (docs/environments.md,
 * docs/api.md): GET /v1/environments[/{name}] (what droverd.yaml defines,
 * a secret variable as "<secret>", the windows and whether a deployment may
 * start now), POST /v1/deployments/{id}/approve and /deny.
 *
 * The route asks for a deployer; the handler then asks for the role the
 * deployment's approval names (approval.role of its environment or plan,
 * approver by default). Four
 * eyes and repeated approvals are the engine's (deploy_gate.c).
 */
#include "env_api.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "env_conf.h"
#include "err.h"
#include "tokens.h"
#include "windows.h"

#define COMMENT_MAX 500

/* ---- GET /v1/environments ---- */

static json_t *window_json(const struct drv_window *w, int64_t now)
{
	char text[512];

	drv_window_describe(w, text, sizeof(text));
	return json_pack("{s:s, s:s, s:s, s:b}", "name", w->name, "type",
	                 w->allow ? "allow" : "deny", "text", text, "open",
	                 drv_window_open(w, now));
}

static json_t *vars_json(const struct drv_plan_env *env)
{
	json_t *o = json_object();

	for (size_t i = 0; o != NULL && i < env->n_vars; i++)
		json_object_set_new(
		        o, env->vars[i].name,
		        json_string(env->vars[i].secret ? "<secret>" : env->vars[i].value));
	return o;
}

static json_t *env_json(const struct drv_plan_env *env, int64_t now)
{
	json_t *labels = json_object(), *windows = json_array(), *o;
	const struct drv_window *b;
	char text[512];
	bool outside;

	for (size_t i = 0; labels != NULL && i < env->n_labels; i++)
		json_object_set_new(labels, env->labels[i].key, json_string(env->labels[i].value));
	for (size_t i = 0; windows != NULL && i < env->n_windows; i++)
		json_array_append_new(windows, window_json(&env->windows[i], now));
	o = json_pack("{s:s, s:o, s:o, s:o, s:s}", "name", env->name, "labels", labels, "vars",
	              vars_json(env), "windows", windows, "at_window",
	              env->continue_at_window ? "continue" : "pause");
	if (o == NULL)
		return NULL;
	if (env->approvers > 0)
		json_object_set_new(o, "approval",
		                    json_pack("{s:i, s:s, s:b, s:I}", "approvers", env->approvers,
		                              "role", env->approver_role, "allow_self",
		                              env->allow_self, "timeout_ms",
		                              (json_int_t)env->approval_timeout_ms));
	if (env->approvers > 0 && env->approval_at_step > 0) {
		json_t *a = json_object_get(o, "approval");
		char pct[8];

		snprintf(pct, sizeof(pct), "%u%%", env->approval_at_step);
		json_object_set_new(a, "before", json_boolean(env->approval_before));
		json_object_set_new(a, "at_canary_step", json_string(pct));
	}
	b = drv_windows_blocking(env->windows, env->n_windows, now, &outside);
	json_object_set_new(o, "deployable", json_boolean(b == NULL));
	if (b != NULL) {
		drv_window_describe(b, text, sizeof(text));
		json_object_set_new(o, "blocked_by",
		                    json_pack("{s:s, s:s, s:s}", "window", b->name, "why",
		                              outside ? "outside" : "inside", "text", text));
	}
	return o;
}

static int envs_list(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	const struct deploy_api *api = ctx;
	int64_t now = drv_wall_ms() / 1000;
	json_t *arr = json_array();

	(void)req;
	for (size_t i = 0; arr != NULL && api->environments != NULL && i < api->environments->n;
	     i++)
		json_array_append_new(arr, env_json(&api->environments->v[i], now));
	if (arr == NULL)
		return DRV_ENOMEM;
	return drv_http_json(resp, 200, json_pack("{s:o}", "environments", arr));
}

static int env_get(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	const struct deploy_api *api = ctx;
	const char *name = drv_http_param(req, "name");
	const struct drv_plan_env *env = drv_envs_find(api->environments, name);
	json_t *o;

	if (env == NULL)
		return drv_http_error(resp, 404, "not-found", "no environment '%.64s'", name);
	o = env_json(env, drv_wall_ms() / 1000);
	return o != NULL ? drv_http_json(resp, 200, o) : DRV_ENOMEM;
}

/* ---- approve / deny ---- */

static bool comment_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	}
	return true;
}

/* May this token decide on deployment id? 403 when its role is weaker
 * than the one the deployment's environment names. */
static int check_role(struct deploy_api *api, struct drv_http_req *req, struct drv_http_resp *resp,
                      const char *id, bool *answered)
{
	enum drv_role need = DRV_ROLE_APPROVER;
	const char *role;
	json_t *obj = NULL;
	int rc = deploy_engine_get(api->engine, id, &obj);

	*answered = false;
	if (rc == DRV_ENOENT) {
		*answered = true;
		return drv_http_error(resp, 404, "not-found", "no deployment '%s'", id);
	}
	if (rc != DRV_OK)
		return rc;
	/* the role the deployment's approval names (its environment's or its
	 * plan's, the stronger): approver when it has none */
	role = json_string_value(json_object_get(json_object_get(obj, "approval"), "role"));
	if (role != NULL && drv_role_parse(role, &need) != DRV_OK)
		need = DRV_ROLE_ADMIN;
	json_decref(obj);
	if (drv_role_allows(drv_http_role(req), need))
		return DRV_OK;
	*answered = true;
	return drv_http_error(resp, 403, "forbidden",
	                      "deciding on deployment %s needs the role %s (this token is %s)", id,
	                      drv_role_name(need), drv_role_name(drv_http_role(req)));
}

static int decide(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx, bool approve)
{
	static const struct drv_json_field fields[] = {
	        {.name = "comment", .type = DRV_J_STRING, .max = COMMENT_MAX},
	        {.name = "reason", .type = DRV_J_STRING, .max = COMMENT_MAX},
	};
	struct deploy_api *api = ctx;
	const char *id = drv_http_param(req, "id"), *comment;
	char why[DRV_SEQ_TEXT_MAX] = "";
	json_t *body, *obj = NULL;
	bool answered;
	int rc;

	if (drv_http_body_json(req, resp, fields, 2, &body) != DRV_OK)
		return DRV_OK;
	comment = json_string_value(json_object_get(body, "comment"));
	if (comment == NULL)
		comment = json_string_value(json_object_get(body, "reason"));
	if (comment == NULL)
		comment = "";
	if (!comment_ok(comment) || strlen(id) > DRV_SEQ_ID_MAX) {
		json_decref(body);
		return drv_http_error_at(resp, 400, "bad-request", "comment", 0,
		                         "the comment is at most %d characters without control "
		                         "characters",
		                         COMMENT_MAX);
	}
	drv_http_audit_note(req, "deployment=%s %s comment=\"%s\"", id,
	                    approve ? "approve" : "deny", comment);
	rc = check_role(api, req, resp, id, &answered);
	if (rc == DRV_OK && !answered)
		rc = deploy_engine_decide(api->engine, id, drv_http_actor(req), approve, comment,
		                          &obj, why);
	json_decref(body);
	if (answered)
		return rc;
	if (rc == DRV_ENOENT)
		return drv_http_error(resp, 404, "not-found", "no deployment '%s'", id);
	if (rc == DRV_ESTATE)
		return drv_http_error(resp, 409, "state", "%s", why);
	if (rc == DRV_EPERM)
		return drv_http_error(resp, 403, "four-eyes", "%s", why);
	if (rc == DRV_EEXIST)
		return drv_http_error(resp, 409, "already-approved", "%s", why);
	if (rc != DRV_OK)
		return rc;
	return drv_http_json(resp, 200, obj);
}

static int dep_approve(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	return decide(req, resp, ctx, true);
}

static int dep_deny(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	return decide(req, resp, ctx, false);
}

static const struct drv_http_route routes[] = {
        {.method = "GET",
         .pattern = "/v1/environments",
         .min_role = DRV_ROLE_VIEWER,
         .handler = envs_list},
        {.method = "GET",
         .pattern = "/v1/environments/{name}",
         .min_role = DRV_ROLE_VIEWER,
         .handler = env_get},
        {.method = "POST",
         .pattern = "/v1/deployments/{id}/approve",
         .min_role = DRV_ROLE_DEPLOYER,
         .handler = dep_approve},
        {.method = "POST",
         .pattern = "/v1/deployments/{id}/deny",
         .min_role = DRV_ROLE_DEPLOYER,
         .handler = dep_deny},
};

int env_api_add_routes(struct drv_http_server *srv, struct deploy_api *api)
{
	return drv_http_add_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), api);
}
