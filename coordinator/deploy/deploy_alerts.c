/*
 * deploy_alerts.c: Alertmanager alerts (POST /v1/alerts) against the
 * plans' rollback_on_alerts. The engine remembers which alerts fire (by
 * fingerprint, at most DEPLOY_ALERTS_MAX); a firing alert that matches a
 * rule of a service whose deployment runs fails that service (EV_FAIL: a
 * breach, rolled back by its failure policy); a resolved one is recorded
 * as an event. Alertmanager posts firing alerts again every
 * repeat_interval, so an alert that fired before a deployment reached its
 * service counts when it is posted again. Engine thread only.
 */
#include <stdio.h>
#include <string.h>

#include "deploy_int.h"
#include "err.h"
#include "log.h"

/* The key of an alert: its fingerprint, else its labels as text. */
static char *alert_key(const json_t *a)
{
	const char *fp = json_string_value(json_object_get(a, "fingerprint"));

	if (fp != NULL && fp[0] != '\0')
		return strdup(fp);
	return json_dumps(json_object_get(a, "labels"), JSON_COMPACT | JSON_SORT_KEYS);
}

static void remember(struct deploy_engine *e, const json_t *a, bool firing)
{
	char *key = alert_key(a);

	if (key == NULL)
		return;
	if (!firing)
		json_object_del(e->alerts, key);
	else if (json_object_size(e->alerts) < DEPLOY_ALERTS_MAX ||
	         json_object_get(e->alerts, key) != NULL)
		json_object_set(e->alerts, key, json_object_get(a, "labels"));
	else
		drv_warn("deploy", "too many firing alerts: not remembered", "max=%d",
		         DEPLOY_ALERTS_MAX);
	free(key);
}

/* One alert against one running deployment. */
static int apply(struct deploy_engine *e, struct dep *d, const json_t *a, bool firing)
{
	const json_t *labels = json_object_get(a, "labels");
	const char *name = json_string_value(json_object_get(labels, "alertname"));
	char why[DRV_SEQ_TEXT_MAX];
	int matched = 0;

	for (size_t i = 0; i < d->plan->n_services; i++) {
		const struct drv_plan_service *ps = &d->plan->services[i];
		int rule = drv_plan_alert_match(ps, labels);
		struct drv_seq_event ev = {.kind = DRV_SEQ_EV_FAIL, .service = ps->name};

		if (rule < 0)
			continue;
		deploy_event(d, "alert", NULL,
		             json_pack("{s:s, s:s, s:s?, s:i, s:O}", "service", ps->name, "status",
		                       firing ? "firing" : "resolved", "alertname", name, "rule",
		                       rule, "labels", labels));
		d->dirty = true;
		if (!firing)
			continue;
		snprintf(why, sizeof(why), "alert %.80s fired (rollback_on_alerts[%d])",
		         name ? name : "?", rule);
		ev.message = why;
		if (deploy_run_event(e, d, &ev) == DRV_OK) {
			matched++;
			drv_info("deploy", "service failed by an alert",
			         "deployment=%s service=%s alert=%s", d->row.id, ps->name,
			         name ? name : "");
		}
	}
	return matched;
}

int deploy_alerts_take(struct deploy_engine *e, const json_t *payload, int *matched)
{
	const json_t *list = json_object_get(payload, "alerts"), *a;
	size_t i;
	int n = 0;

	if (e->alerts == NULL && (e->alerts = json_object()) == NULL)
		return DRV_ENOMEM;
	json_array_foreach(list, i, a)
	{
		bool firing =
		        strcmp(json_string_value(json_object_get(a, "status")), "firing") == 0;

		remember(e, a, firing);
		for (struct dep *d = e->deps; d != NULL; d = d->next) {
			if (d->seq != NULL && !d->ended)
				n += apply(e, d, a, firing);
		}
	}
	for (struct dep *d = e->deps; d != NULL; d = d->next) {
		if (d->dirty && !d->ended)
			deploy_run_flush(e, d);
	}
	*matched = n;
	return DRV_OK;
}

int deploy_alerts_precheck(struct deploy_engine *e, const struct drv_plan *plan, char *why,
                           size_t cap)
{
	const char *key;
	json_t *labels;

	json_object_foreach(e->alerts, key, labels)
	{
		for (size_t i = 0; i < plan->n_services; i++) {
			const struct drv_plan_service *ps = &plan->services[i];

			if (!ps->alert_precheck || drv_plan_alert_match(ps, labels) < 0)
				continue;
			snprintf(why, cap, "alert %s fires for %s",
			         json_string_value(json_object_get(labels, "alertname"))
			                 ? json_string_value(json_object_get(labels, "alertname"))
			                 : "?",
			         ps->name);
			return DRV_EEXIST;
		}
	}
	return DRV_OK;
}
