/* report_metrics.c: metrics from agents' reports (see report_metrics.h). */
#include "report_metrics.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "err.h"
#include "sequencer.h"

/* Buckets for steps: from a quick hook to a slow pull. */
static const double step_buckets[] = {0.05, 0.1, 0.25, 0.5, 1,   2.5, 5,   10,
                                      20,   30,  60,   120, 300, 600, 1800};

static struct {
	struct drv_metric *duration, *pulls, *pull_bytes, *health_failures;
	_Atomic int ready;
} rm;

const char *drv_report_step_kind(const char *step_id)
{
	struct drv_seq_id id;

	if (drv_seq_id_parse(step_id, &id) != DRV_OK || id.count == 0)
		return "other";
	return drv_seq_step_kind_name(id.kind == DRV_SEQ_ID_TRAFFIC ? DRV_SEQ_STEP_TRAFFIC
	                                                            : id.kind);
}

int drv_report_metrics_init(struct drv_metrics *m)
{
	static const char *const kind_result[] = {"kind", "result", NULL};
	static const char *const result[] = {"result", NULL}, *const source[] = {"source", NULL};
	static const char *const service[] = {"service", NULL};
	int rc;

	rc = drv_metrics_histogram(m, "drover_step_duration_seconds",
	                           "Duration of finished steps on agents, by step kind and result.",
	                           kind_result, step_buckets,
	                           sizeof(step_buckets) / sizeof(step_buckets[0]), &rm.duration);
	if (rc == DRV_OK)
		rc = drv_metrics_counter(m, "drover_image_pulls_total",
		                         "Services' images pulled and verified on a host "
		                         "(prestage steps), by result.",
		                         result, &rm.pulls);
	if (rc == DRV_OK)
		rc = drv_metrics_counter(m, "drover_image_pull_bytes_total",
		                         "Bytes of image blobs steps needed: downloaded from the "
		                         "registry, or found in the agent's cache.",
		                         source, &rm.pull_bytes);
	if (rc == DRV_OK)
		rc = drv_metrics_counter(m, "drover_health_check_failures_total",
		                         "Health transitions to unhealthy reported by agents, by "
		                         "service.",
		                         service, &rm.health_failures);
	if (rc == DRV_OK)
		atomic_store(&rm.ready, 1);
	return rc;
}

static const char *result_name(Drover__StepResult r)
{
	return r == DROVER__STEP_RESULT__STEP_SUCCEEDED ? "succeeded" : "failed";
}

void drv_report_metrics_observe(const Drover__Report *r)
{
	bool final = r->result == DROVER__STEP_RESULT__STEP_SUCCEEDED ||
	             r->result == DROVER__STEP_RESULT__STEP_FAILED;
	const char *kind;

	if (!atomic_load(&rm.ready))
		return;
	if (r->health && !r->health->healthy)
		drv_counter_inc(rm.health_failures, r->service && r->service[0] ? r->service : "-");
	if (!final)
		return;
	kind = drv_report_step_kind(r->step_id);
	drv_histogram_observe(rm.duration, (double)r->duration_ms / 1000.0, kind,
	                      result_name(r->result));
	if (strcmp(kind, "prestage") == 0)
		drv_counter_inc(rm.pulls, result_name(r->result));
	if (r->pulled_bytes)
		drv_counter_add(rm.pull_bytes, (double)r->pulled_bytes, "registry");
	if (r->cached_bytes)
		drv_counter_add(rm.pull_bytes, (double)r->cached_bytes, "cache");
}
