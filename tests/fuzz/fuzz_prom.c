/*
 * fuzz_prom: Prometheus' /api/v1/query answers (prom_query.c), the
 * `prometheus` section of droverd.yaml (prom_conf.c), check conditions and
 * the filling in of query placeholders (plan_prom.c), and Alertmanager's
 * webhook payload as POST /v1/alerts checks it (alerts_api.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alerts_api.h"
#include "err.h"
#include "log.h"
#include "prom_conf.h"
#include "prom_query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct drv_prom_result r;
	struct drv_prom_servers s = {0};
	struct drv_cfg_diag diag = {0};
	struct drv_plan_check k = {.name = "f", .cond = DRV_COND_BETWEEN, .a = 0, .b = 1};
	char why[DRV_PROM_WHY_MAX], text[400], *str, *q;
	const char *hosts[2];
	double v;
	int rc;

	drv_log_set_level(DRV_LOG_ERROR);
	rc = drv_prom_parse((const char *)data, size, &r, why, sizeof(why));
	(void)drv_prom_verdict(&k, rc, &r, why, &v, text, sizeof(text));
	if (drv_prom_servers_parse((const char *)data, size, "f.yaml", "/nonexistent", &s, &diag) ==
	    DRV_OK)
		drv_prom_servers_free(&s);
	{
		json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
		if (j != NULL) {
			(void)alerts_api_check(j, why, sizeof(why));
			json_decref(j);
		}
	}
	str = malloc(size + 1);
	if (str == NULL)
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';
	(void)drv_plan_cond_parse(str, &k.cond, &k.a, &k.b);
	hosts[0] = str;
	hosts[1] = "h.1";
	q = drv_plan_query_expand(str, str, str, hosts, 2);
	free(q);
	free(str);
	return 0;
}
