/*
 * prom_check.c: the submission check of a plan's analysis (prom_check.h).
 */
#include "prom_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "prom_query.h"

static void path_of(const struct drv_plan *plan, size_t i, char *buf, size_t cap)
{
	size_t t = plan->services[i].tier;

	snprintf(buf, cap, "tiers[%zu].services[%zu].analysis.prometheus", t,
	         i - plan->tiers[t].first);
}

/* One query: DRV_EINVAL only when the server refused it. */
static int try_query(const struct drv_prom_server *sv, const struct drv_plan_service *ps,
                     const struct drv_plan_check *k, char *why, size_t cap)
{
	struct drv_prom_server quick = *sv;
	struct drv_prom_result res;
	char *q = drv_plan_query_expand(k->query, ps->name, ps->version, NULL, 0);
	int rc;

	if (q == NULL)
		return DRV_ENOMEM;
	if (quick.timeout_ms > DRV_PROM_CHECK_TIMEOUT_MS)
		quick.timeout_ms = DRV_PROM_CHECK_TIMEOUT_MS;
	rc = drv_prom_query(&quick, q, &res, why, cap);
	free(q);
	if (rc == DRV_EIO)
		drv_warn("deploy", "analysis query not checked: server unreachable",
		         "service=%s check=%s why=\"%s\"", ps->name, k->name, why);
	return rc == DRV_EINVAL ? DRV_EINVAL : DRV_OK;
}

int drv_prom_check_plan(const struct drv_prom_servers *servers, const struct drv_plan *plan,
                        struct drv_prom_problem *out)
{
	char path[120], why[DRV_PROM_WHY_MAX];

	for (size_t i = 0; i < plan->n_services; i++) {
		const struct drv_plan_service *ps = &plan->services[i];
		const struct drv_prom_server *sv;

		if (ps->analysis.server == NULL)
			continue;
		path_of(plan, i, path, sizeof(path));
		sv = drv_prom_server_find(servers, ps->analysis.server);
		if (sv == NULL) {
			out->status = 422;
			out->code = "unknown-prometheus";
			out->line = ps->analysis.line;
			snprintf(out->field, sizeof(out->field), "%s.server", path);
			snprintf(out->message, sizeof(out->message),
			         "%s.server: no prometheus server named '%s' in droverd.yaml "
			         "(prometheus: %zu defined)",
			         path, ps->analysis.server, servers ? servers->n : 0);
			return DRV_EINVAL;
		}
		size_t nc = ps->analysis.n_checks;

		for (size_t j = 0; j < nc + ps->analysis.n_baseline; j++) {
			const struct drv_plan_check *k =
			        j < nc ? &ps->analysis.checks[j] : &ps->analysis.baseline[j - nc].k;
			int rc = try_query(sv, ps, k, why, sizeof(why));

			if (rc == DRV_ENOMEM)
				return rc;
			if (rc != DRV_EINVAL)
				continue;
			out->status = 400;
			out->code = "invalid-plan";
			out->line = k->line;
			snprintf(out->field, sizeof(out->field), "%s.%s[%zu].query", path,
			         j < nc ? "checks" : "baseline", j < nc ? j : j - nc);
			snprintf(out->message, sizeof(out->message), "%s: %s", out->field, why);
			return DRV_EINVAL;
		}
	}
	return DRV_OK;
}
