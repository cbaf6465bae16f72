/*
 * metrics.h: counters, gauges and histograms with labels, exposed in the
 * Prometheus text format (version 0.0.4) at GET /metrics.
 *
 * Register a metric once (at start-up; registering the same name with the
 * same type and labels again returns the same handle), keep the handle, and
 * update it from any thread:
 *
 *     static const char *const reason[] = {"reason", NULL};
 *     struct drv_metric *rejected;
 *     drv_metrics_counter(drv_metrics_global(), "drover_instructions_rejected_total",
 *                         "Instructions agents refused, by reason", reason, &rejected);
 *     drv_counter_inc(rejected, "bad-signature");     // one string per label
 *
 * Update functions take exactly as many label values (const char *) as the
 * metric has label names, in order; a NULL handle makes them do nothing, so a
 * failed registration never crashes a caller. Every metric keeps at most
 * DRV_METRICS_SERIES_MAX label combinations; further ones are dropped and
 * logged once. Values that are cheaper to compute at scrape time (agents by
 * state) are set by a collect callback (drv_metrics_on_collect).
 *
 * Names: [a-zA-Z_:][a-zA-Z0-9_:]*, with drover_ prefix and Prometheus
 * conventions (counters end in _total, units in the name: _seconds, _bytes).
 */
#ifndef DRV_METRICS_H
#define DRV_METRICS_H

#include <stddef.h>

struct drv_metrics;
struct drv_metric;

#define DRV_METRICS_LABELS_MAX  4
#define DRV_METRICS_SERIES_MAX  1000
#define DRV_METRICS_BUCKETS_MAX 32

/* The process-wide registry (created on first use; lives until exit). */
struct drv_metrics *drv_metrics_global(void);

/* A registry of one's own (tests). */
int drv_metrics_new(struct drv_metrics **out);
void drv_metrics_free(struct drv_metrics *m);

/* labels: NULL-terminated array of label names, or NULL for none. The
 * handle is owned by the registry. DRV_EINVAL for a bad name or label,
 * DRV_EEXIST if the name is registered with another type or labels. */
int drv_metrics_counter(struct drv_metrics *m, const char *name, const char *help,
                        const char *const *labels, struct drv_metric **out);
int drv_metrics_gauge(struct drv_metrics *m, const char *name, const char *help,
                      const char *const *labels, struct drv_metric **out);
/* buckets: increasing upper bounds (without +Inf), or NULL for the default
 * 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 120 300 600 seconds. */
int drv_metrics_histogram(struct drv_metrics *m, const char *name, const char *help,
                          const char *const *labels, const double *buckets, size_t n_buckets,
                          struct drv_metric **out);

/* Updates: the trailing arguments are the label values. Counters refuse
 * negative increments (ignored). */
void drv_counter_inc(struct drv_metric *c, ...);
void drv_counter_add(struct drv_metric *c, double v, ...);
void drv_gauge_set(struct drv_metric *g, double v, ...);
void drv_gauge_add(struct drv_metric *g, double v, ...);
void drv_histogram_observe(struct drv_metric *h, double v, ...);

/* fn(m, ctx) runs before every rendering, outside the registry lock, so it
 * may update metrics (set "agents by state" gauges from the registry). */
int drv_metrics_on_collect(struct drv_metrics *m, void (*fn)(struct drv_metrics *m, void *ctx),
                           void *ctx);

/* The exposition text; the caller frees *out. */
int drv_metrics_render(struct drv_metrics *m, char **out, size_t *len);

#endif
