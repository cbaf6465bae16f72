/*
 * fuzz_config.c: the YAML options-table reader (common/config.c) on
 * arbitrary bytes, against droverd's real table (dconf.c), then the writer
 * on whatever was read, and the result read back; and the `balancers`
 * and `environments` section readers (traffic_conf.c, env_conf.c) on the
 * same bytes, and `lifecycles` (lifecycle.c) against the environments read;
 * the windows read are asked what blocks a deployment at a fixed time and
 * the approval policy stays within its bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dconf.h"
#include "env_conf.h"
#include "err.h"
#include "lifecycle.h"
#include "traffic_conf.h"
#include "windows.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct droverd_conf c, c2;
	struct drv_cfg_diag diag;
	const struct drv_cfg_opt *opts;
	char *text;
	size_t n;
	struct drv_traffic_balancers b = {0};
	struct drv_plan_envs envs = {0};

	memset(&diag, 0, sizeof(diag));
	if (drv_envs_parse((const char *)data, size, "fuzz.yaml", "/nonexistent", &envs, &diag) ==
	    DRV_OK) {
		struct drv_lifecycles lc = {0};

		for (size_t i = 0; i < envs.n; i++) {
			const struct drv_plan_env *e = &envs.v[i];
			const struct drv_window *w;
			bool outside;

			if (drv_envs_find(&envs, e->name) == NULL)
				abort();
			if (e->approvers < 0 || e->approvers > DRV_ENV_APPROVERS_MAX ||
			    (e->approvers > 0 && e->approval_timeout_ms <= 0))
				abort();
			w = drv_windows_blocking(e->windows, e->n_windows, 1790000000, &outside);
			if (w != NULL && (w < e->windows || w >= e->windows + e->n_windows ||
			                  outside != w->allow))
				abort();
		}
		memset(&diag, 0, sizeof(diag));
		if (drv_lifecycles_parse((const char *)data, size, "fuzz.yaml", &envs, &lc,
		                         &diag) == DRV_OK) {
			for (size_t i = 0; i < lc.n;
			     i++) /* every phase but the first has one before */
				for (size_t k = 1; k < lc.v[i].n; k++)
					if (drv_lifecycle_previous(&lc, lc.v[i].phases[k], NULL) ==
					    NULL)
						abort();
			drv_lifecycles_free(&lc);
		}
		drv_envs_free(&envs);
	}
	memset(&diag, 0, sizeof(diag));
	if (drv_traffic_balancers_parse((const char *)data, size, "fuzz.yaml", "/etc/drover", &b,
	                                &diag) == DRV_OK) {
		for (size_t i = 0; i < b.n; i++)
			if (drv_traffic_balancer_find(&b, b.v[i].name) == NULL)
				abort();
		drv_traffic_balancers_free(&b);
	}
	opts = dconf_options(&n);
	memset(&c, 0, sizeof(c));
	if (drv_cfg_load_buffer(opts, n, "fuzz.yaml", "/etc/drover", (const char *)data, size, &c,
	                        &diag) != DRV_OK)
		return 0;
	if (drv_cfg_format(opts, n, &c, NULL, &text) == DRV_OK) {
		memset(&c2, 0, sizeof(c2));
		/* what we write must read back */
		if (drv_cfg_load_buffer(opts, n, "again.yaml", "/", text, strlen(text), &c2,
		                        &diag) != DRV_OK)
			abort();
		drv_cfg_free(opts, n, &c2);
		free(text);
	}
	drv_cfg_free(opts, n, &c);
	return 0;
}
