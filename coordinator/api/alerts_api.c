/*
 * alerts_api.c: POST /v1/alerts (alerts_api.h). The body is capped at
 * DRV_ALERTS_BODY_MAX by the route (413 naming the limit, audited); its shape is checked here:
 * {"alerts": [{"status": "firing"|"resolved", "labels": {NAME: "value", ...}, "fingerprint"?}]},
 * everything else Alertmanager sends (version, groupKey, annotations,
 * startsAt, ...) is ignored. A malformed payload is answered 400; like
 * every POST the request is audited.
 */
#include "alerts_api.h"

#include <stdio.h>
#include <string.h>

#include "err.h"
#include "log.h"

static bool text_ok(const json_t *v)
{
	return json_is_string(v) && json_string_length(v) <= DRV_ALERT_VALUE_MAX &&
	       strlen(json_string_value(v)) == json_string_length(v);
}

static int check_alert(const json_t *a, size_t i, char *why, size_t cap)
{
	const char *st = json_string_value(json_object_get(a, "status"));
	const json_t *labels = json_object_get(a, "labels"), *fp, *v;
	const char *key;

	if (!json_is_object(a)) {
		snprintf(why, cap, "alerts[%zu]: must be an object", i);
		return DRV_EINVAL;
	}
	if (st == NULL || (strcmp(st, "firing") != 0 && strcmp(st, "resolved") != 0)) {
		snprintf(why, cap, "alerts[%zu].status: must be firing or resolved", i);
		return DRV_EINVAL;
	}
	if (!json_is_object(labels) || json_object_size(labels) > DRV_ALERT_LABELS_MAX) {
		snprintf(why, cap, "alerts[%zu].labels: must be an object of at most %d labels", i,
		         DRV_ALERT_LABELS_MAX);
		return DRV_EINVAL;
	}
	json_object_foreach((json_t *)labels, key, v)
	{
		if (!text_ok(v) || strlen(key) > DRV_ALERT_VALUE_MAX) {
			snprintf(why, cap,
			         "alerts[%zu].labels.%.40s: must be a string of at most %d bytes",
			         i, key, DRV_ALERT_VALUE_MAX);
			return DRV_EINVAL;
		}
	}
	fp = json_object_get(a, "fingerprint");
	if (fp != NULL && (!text_ok(fp) || json_string_length(fp) > 128)) {
		snprintf(why, cap, "alerts[%zu].fingerprint: must be a string of at most 128 bytes",
		         i);
		return DRV_EINVAL;
	}
	return DRV_OK;
}

int alerts_api_check(const json_t *payload, char *why, size_t cap)
{
	const json_t *list = json_object_get(payload, "alerts"), *a;
	size_t i;

	if (!json_is_object(payload) || !json_is_array(list) ||
	    json_array_size(list) > DRV_ALERTS_MAX) {
		snprintf(why, cap,
		         "alerts: must be a list of at most %d alerts (Alertmanager's webhook)",
		         DRV_ALERTS_MAX);
		return DRV_EINVAL;
	}
	json_array_foreach(list, i, a)
	{
		if (check_alert(a, i, why, cap) != DRV_OK)
			return DRV_EINVAL;
	}
	return DRV_OK;
}

static int alerts_post(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	struct deploy_engine *engine = *(struct deploy_engine *const *)ctx;
	json_error_t jerr;
	char why[200];
	size_t len;
	const char *body = drv_http_body(req, &len);
	json_t *payload = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	int matched = 0, rc;

	if (payload == NULL) {
		drv_http_audit_note(req, "alerts malformed");
		return drv_http_error(resp, 400, "bad-request", "not JSON: %.100s (line %d)",
		                      jerr.text, jerr.line);
	}
	if (alerts_api_check(payload, why, sizeof(why)) != DRV_OK) {
		json_decref(payload);
		drv_http_audit_note(req, "alerts malformed");
		return drv_http_error(resp, 400, "bad-request", "%s", why);
	}
	rc = engine ? deploy_engine_alerts(engine, payload, &matched) : DRV_ESTATE;
	drv_http_audit_note(req, "alerts=%zu status=%.20s matched=%d",
	                    json_array_size(json_object_get(payload, "alerts")),
	                    json_string_value(json_object_get(payload, "status"))
	                            ? json_string_value(json_object_get(payload, "status"))
	                            : "",
	                    matched);
	json_decref(payload);
	if (rc != DRV_OK)
		return drv_http_error(resp, 503, "unavailable", "the deployment engine: %s",
		                      drv_strerror(rc));
	return drv_http_json(resp, 200, json_pack("{s:i}", "services_failed", matched));
}

static const struct drv_http_route alerts_routes[] = {
        {.method = "POST",
         .pattern = "/v1/alerts",
         .min_role = DRV_ROLE_ALERTS,
         .handler = alerts_post,
         .max_body = DRV_ALERTS_BODY_MAX,
         .body_what = "an Alertmanager payload"},
};

int alerts_api_add_routes(struct drv_http_server *srv, struct deploy_engine *const *engine)
{
	return drv_http_add_routes(srv, alerts_routes,
	                           sizeof(alerts_routes) / sizeof(alerts_routes[0]),
	                           (void *)engine);
}
