/*
 * report_metrics.h: Prometheus metrics taken from the agents' reports, as
 * they arrive (core_report.c calls drv_report_metrics_observe for every verified,
 * new report):
 *
 *   drover_step_duration_seconds{kind,result}   histogram of finished steps
 *       (kind from the sequencer's step id: prestage, start, rollback,
 *       finalize, pre, up, down, post, traffic; "other" for the rest;
 *       result succeeded or failed)
 *   drover_image_pulls_total{result}            prestage steps: the images of
 *       a service pulled and verified on a host, or not
 *   drover_image_pull_bytes_total{source}       bytes of image blobs a step
 *       needed: source "registry" (downloaded) or "cache" (already there),
 *       from the reports' pulled_bytes and cached_bytes
 *   drover_health_check_failures_total{service} health transitions to
 *       unhealthy that agents reported
 *
 * Label values are bounded: kinds and results are fixed sets, services are
 * the plans' (and the registry keeps at most DRV_METRICS_SERIES_MAX series).
 */
#ifndef DRV_REPORT_METRICS_H
#define DRV_REPORT_METRICS_H

#include "drover.pb-c.h"
#include "metrics.h"

/* Register the metrics in m (once, at start-up; again is harmless). */
int drv_report_metrics_init(struct drv_metrics *m);

/* Count one report (any thread). Does nothing before init. */
void drv_report_metrics_observe(const Drover__Report *r);

/* The step kind of a step id made by the sequencer ("dep-7:start:3:17"
 * gives "start"); "other" for any other id. */
const char *drv_report_step_kind(const char *step_id);

#endif
