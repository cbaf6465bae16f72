/*
 * prom_check.h: a plan's Prometheus analysis checked at submission. Every
 * server it names must be one droverd.yaml defines; every query is sent to
 * its server once (placeholders filled with the service, its version and
 * no hosts): a query Prometheus refuses (HTTP 400) is a plan error. An
 * unreachable server is not (the check then follows its on_error).
 */
#ifndef DRV_PROM_CHECK_H
#define DRV_PROM_CHECK_H

#include <stddef.h>

#include "plan.h"
#include "prom_conf.h"

#define DRV_PROM_CHECK_TIMEOUT_MS 5000 /* per query at submission, at most */

struct drv_prom_problem {
	int status;       /* 422 unknown server, 400 refused query */
	const char *code; /* "unknown-prometheus", "invalid-plan" */
	char field[160];
	int line;
	char message[480];
};

/* DRV_OK: nothing wrong. DRV_EINVAL: the first problem is in *out. */
int drv_prom_check_plan(const struct drv_prom_servers *servers, const struct drv_plan *plan,
                        struct drv_prom_problem *out);

#endif
