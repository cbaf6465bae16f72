/*
 * prom_query.h: one instant query against Prometheus' HTTP API
 * (GET /api/v1/query) and the verdict of a plan's check on its answer.
 *
 * The answer is parsed with a size cap (DRV_PROM_BODY_MAX); a vector's
 * samples and a scalar give numbers, anything else is an error. NaN and
 * infinite samples are left out (a rate over no requests is NaN: no data).
 * Nothing here holds state; drv_prom_query blocks up to the server's
 * timeout (run it on a worker thread).
 */
#ifndef DRV_PROM_QUERY_H
#define DRV_PROM_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include "plan.h"
#include "prom_conf.h"

#define DRV_PROM_BODY_MAX (1u << 20) /* bytes of an answer */
#define DRV_PROM_WHY_MAX  300

struct drv_prom_result {
	size_t n;      /* finite samples (series of a vector, or 1 for a scalar) */
	double lo, hi; /* the smallest and largest of them (valid when n > 0) */
	double first;  /* the first sample */
};

/*
 * Parse a /api/v1/query answer. DRV_OK with out filled in; DRV_EINVAL when
 * the answer is malformed or Prometheus reports an error (why says what,
 * with Prometheus' own message). Never reads past len.
 */
int drv_prom_parse(const char *body, size_t len, struct drv_prom_result *out, char *why,
                   size_t why_cap);

/*
 * Run query on server. DRV_OK: out holds the result. DRV_EINVAL: Prometheus
 * answered 400 (the query does not parse; why has its message). DRV_EIO:
 * unreachable, timed out, another status or a malformed answer.
 */
int drv_prom_query(const struct drv_prom_server *server, const char *query,
                   struct drv_prom_result *out, char *why, size_t why_cap);

/* The verdict of check k on a query's outcome (rc and res from
 * drv_prom_query); text says what was seen, e.g. "0.031 (2 series), want < 0.01". */
enum drv_plan_outcome drv_prom_verdict(const struct drv_plan_check *k, int rc,
                                       const struct drv_prom_result *res, const char *why,
                                       double *value, char *text, size_t text_cap);

#endif
