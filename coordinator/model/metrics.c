/* metrics.c: the metrics registry and its Prometheus text exposition. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"

#define NAME_MAX_LEN 128
#define HELP_MAX_LEN 512
#define VALUE_MAX    256 /* label value bytes kept */
#define MAX_COLLECT  8

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM };

struct series {
	char *values[DRV_METRICS_LABELS_MAX];
	double value;   /* counter, gauge */
	double sum;     /* histogram */
	uint64_t count; /* histogram */
	uint64_t *le;   /* histogram: per-bucket (not cumulative) counts */
};

struct drv_metric {
	struct drv_metrics *reg;
	enum kind kind;
	char name[NAME_MAX_LEN + 1];
	char help[HELP_MAX_LEN + 1];
	size_t n_labels;
	char labels[DRV_METRICS_LABELS_MAX][NAME_MAX_LEN + 1];
	double buckets[DRV_METRICS_BUCKETS_MAX];
	size_t n_buckets;
	struct series *series;
	size_t n_series, cap_series;
	bool overflow_logged;
	struct drv_metric *next;
};

struct collect_hook {
	void (*fn)(struct drv_metrics *m, void *ctx);
	void *ctx;
};

struct drv_metrics {
	pthread_mutex_t lock;
	struct drv_metric *head, *tail;
	struct collect_hook hooks[MAX_COLLECT];
	size_t n_hooks;
};

static const double default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                         2.5,   5,    10,    30,   60,  120,  300, 600};

static struct drv_metrics *global;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void make_global(void)
{
	if (drv_metrics_new(&global) != DRV_OK)
		global = NULL;
}

struct drv_metrics *drv_metrics_global(void)
{
	pthread_once(&global_once, make_global);
	return global;
}

int drv_metrics_new(struct drv_metrics **out)
{
	struct drv_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return DRV_ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return DRV_OK;
}

static void series_free(struct series *s, size_t n_labels)
{
	for (size_t i = 0; i < n_labels; i++)
		free(s->values[i]);
	free(s->le);
}

void drv_metrics_free(struct drv_metrics *m)
{
	struct drv_metric *next;

	if (!m)
		return;
	for (struct drv_metric *x = m->head; x; x = next) {
		next = x->next;
		for (size_t i = 0; i < x->n_series; i++)
			series_free(&x->series[i], x->n_labels);
		free(x->series);
		free(x);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* ---------------------------------------------------------- registration */

static bool name_ok(const char *s, bool colon)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > NAME_MAX_LEN || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (colon && c == ':')))
			return false;
	}
	return true;
}

static int labels_check(const char *const *labels, enum kind kind, size_t *n)
{
	size_t i = 0;

	for (; labels && labels[i]; i++) {
		if (i >= DRV_METRICS_LABELS_MAX || !name_ok(labels[i], false) ||
		    strncmp(labels[i], "__", 2) == 0 ||
		    (kind == K_HISTOGRAM && strcmp(labels[i], "le") == 0))
			return DRV_EINVAL;
	}
	*n = i;
	return DRV_OK;
}

static bool same_shape(const struct drv_metric *x, enum kind kind, const char *const *labels,
                       size_t n)
{
	if (x->kind != kind || x->n_labels != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(x->labels[i], labels[i]) != 0)
			return false;
	}
	return true;
}

static int buckets_check(const double *b, size_t n)
{
	if (n == 0 || n > DRV_METRICS_BUCKETS_MAX)
		return DRV_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(b[i]) || (i > 0 && b[i] <= b[i - 1]))
			return DRV_EINVAL;
	}
	return DRV_OK;
}

static struct drv_metric *find_metric(struct drv_metrics *m, const char *name)
{
	for (struct drv_metric *x = m->head; x; x = x->next) {
		if (strcmp(x->name, name) == 0)
			return x;
	}
	return NULL;
}

static struct drv_metric *metric_alloc(struct drv_metrics *m, enum kind kind, const char *name,
                                       const char *help, const char *const *labels, size_t n,
                                       const double *buckets, size_t nb)
{
	struct drv_metric *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->reg = m;
	x->kind = kind;
	snprintf(x->name, sizeof(x->name), "%s", name);
	snprintf(x->help, sizeof(x->help), "%s", help ? help : "");
	x->n_labels = n;
	for (size_t i = 0; i < n; i++)
		snprintf(x->labels[i], sizeof(x->labels[i]), "%s", labels[i]);
	if (nb)
		memcpy(x->buckets, buckets, nb * sizeof(double));
	x->n_buckets = nb;
	return x;
}

static struct series *series_get(struct drv_metric *x, const char *const *values);

static int do_register(struct drv_metrics *m, enum kind kind, const char *name, const char *help,
                       const char *const *labels, const double *buckets, size_t nb,
                       struct drv_metric **out)
{
	struct drv_metric *x;
	size_t n;
	int rc = DRV_OK;

	if (!m || !name_ok(name, true) || labels_check(labels, kind, &n) != DRV_OK ||
	    (kind == K_HISTOGRAM && buckets_check(buckets, nb) != DRV_OK))
		return DRV_EINVAL;
	pthread_mutex_lock(&m->lock);
	x = find_metric(m, name);
	if (x && !same_shape(x, kind, labels, n)) {
		rc = DRV_EEXIST;
	} else if (!x) {
		x = metric_alloc(m, kind, name, help, labels, n, buckets, nb);
		if (!x) {
			rc = DRV_ENOMEM;
		} else {
			if (m->tail)
				m->tail->next = x;
			else
				m->head = x;
			m->tail = x;
			/* An unlabelled metric shows 0 from the start. */
			if (n == 0)
				series_get(x, NULL);
		}
	}
	pthread_mutex_unlock(&m->lock);
	if (rc == DRV_OK)
		*out = x;
	return rc;
}

int drv_metrics_counter(struct drv_metrics *m, const char *name, const char *help,
                        const char *const *labels, struct drv_metric **out)
{
	return do_register(m, K_COUNTER, name, help, labels, NULL, 0, out);
}

int drv_metrics_gauge(struct drv_metrics *m, const char *name, const char *help,
                      const char *const *labels, struct drv_metric **out)
{
	return do_register(m, K_GAUGE, name, help, labels, NULL, 0, out);
}

int drv_metrics_histogram(struct drv_metrics *m, const char *name, const char *help,
                          const char *const *labels, const double *buckets, size_t n_buckets,
                          struct drv_metric **out)
{
	if (!buckets) {
		buckets = default_buckets;
		n_buckets = sizeof(default_buckets) / sizeof(default_buckets[0]);
	}
	return do_register(m, K_HISTOGRAM, name, help, labels, buckets, n_buckets, out);
}

int drv_metrics_on_collect(struct drv_metrics *m, void (*fn)(struct drv_metrics *m, void *ctx),
                           void *ctx)
{
	int rc = DRV_OK;

	pthread_mutex_lock(&m->lock);
	if (m->n_hooks >= MAX_COLLECT)
		rc = DRV_ETOOBIG;
	else
		m->hooks[m->n_hooks++] = (struct collect_hook){.fn = fn, .ctx = ctx};
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---------------------------------------------------------------- updates */

static bool values_equal(const struct series *s, const char *const *values, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strncmp(s->values[i], values[i], VALUE_MAX) != 0)
			return false;
	}
	return true;
}

static int series_init(struct drv_metric *x, struct series *s, const char *const *values)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < x->n_labels; i++) {
		s->values[i] = strndup(values[i], VALUE_MAX);
		if (!s->values[i])
			goto out_free;
	}
	if (x->kind == K_HISTOGRAM) {
		s->le = calloc(x->n_buckets, sizeof(uint64_t));
		if (!s->le)
			goto out_free;
	}
	return DRV_OK;
out_free:
	series_free(s, x->n_labels);
	return DRV_ENOMEM;
}

/* The series for these label values, created if new. Lock held. */
static struct series *series_get(struct drv_metric *x, const char *const *values)
{
	struct series *grown;

	for (size_t i = 0; i < x->n_series; i++) {
		if (values_equal(&x->series[i], values, x->n_labels))
			return &x->series[i];
	}
	if (x->n_series >= DRV_METRICS_SERIES_MAX) {
		if (!x->overflow_logged)
			drv_warn("metrics", "too many label combinations; dropping new ones",
			         "metric=%s max=%d", x->name, DRV_METRICS_SERIES_MAX);
		x->overflow_logged = true;
		return NULL;
	}
	if (x->n_series == x->cap_series) {
		size_t cap = x->cap_series ? x->cap_series * 2 : 4;
		grown = realloc(x->series, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		x->series = grown;
		x->cap_series = cap;
	}
	if (series_init(x, &x->series[x->n_series], values) != DRV_OK)
		return NULL;
	return &x->series[x->n_series++];
}

enum op { OP_ADD, OP_SET, OP_OBSERVE };

static void apply(struct series *s, const struct drv_metric *x, enum op op, double v)
{
	switch (op) {
	case OP_ADD: s->value += v; break;
	case OP_SET: s->value = v; break;
	case OP_OBSERVE:
		for (size_t i = 0; i < x->n_buckets; i++) {
			if (v <= x->buckets[i]) {
				s->le[i]++;
				break;
			}
		}
		s->sum += v;
		s->count++;
		break;
	}
}

static void update(struct drv_metric *x, enum op op, double v, va_list ap)
{
	const char *values[DRV_METRICS_LABELS_MAX];
	struct series *s;

	for (size_t i = 0; i < x->n_labels; i++) {
		values[i] = va_arg(ap, const char *);
		if (!values[i])
			values[i] = "";
	}
	pthread_mutex_lock(&x->reg->lock);
	s = series_get(x, values);
	if (s)
		apply(s, x, op, v);
	pthread_mutex_unlock(&x->reg->lock);
}

void drv_counter_inc(struct drv_metric *c, ...)
{
	va_list ap;

	if (!c || c->kind != K_COUNTER)
		return;
	va_start(ap, c);
	update(c, OP_ADD, 1, ap);
	va_end(ap);
}

void drv_counter_add(struct drv_metric *c, double v, ...)
{
	va_list ap;

	if (!c || c->kind != K_COUNTER || !(v >= 0))
		return;
	va_start(ap, v);
	update(c, OP_ADD, v, ap);
	va_end(ap);
}

void drv_gauge_set(struct drv_metric *g, double v, ...)
{
	va_list ap;

	if (!g || g->kind != K_GAUGE)
		return;
	va_start(ap, v);
	update(g, OP_SET, v, ap);
	va_end(ap);
}

void drv_gauge_add(struct drv_metric *g, double v, ...)
{
	va_list ap;

	if (!g || g->kind != K_GAUGE)
		return;
	va_start(ap, v);
	update(g, OP_ADD, v, ap);
	va_end(ap);
}

void drv_histogram_observe(struct drv_metric *h, double v, ...)
{
	va_list ap;

	if (!h || h->kind != K_HISTOGRAM || isnan(v))
		return;
	va_start(ap, v);
	update(h, OP_OBSERVE, v, ap);
	va_end(ap);
}

/* -------------------------------------------------------------- rendering */

static void put_escaped(FILE *f, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (quote && *s == '"')
			fputs("\\\"", f);
		else
			fputc(*s, f);
	}
}

/* The shortest decimal that reads back as v ("0.1", not "0.10000000000000001"). */
static void fmt_double(char out[32], double v)
{
	if (isnan(v)) {
		snprintf(out, 32, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, 32, "%s", v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, 32, "%.0f", v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, 32, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

static void put_value(FILE *f, double v)
{
	char text[32];

	fmt_double(text, v);
	fputs(text, f);
}

/* {a="x",b="y"[,le="..."]} or nothing. */
static void put_labels(FILE *f, const struct drv_metric *x, const struct series *s, const char *le)
{
	if (x->n_labels == 0 && !le)
		return;
	fputc('{', f);
	for (size_t i = 0; i < x->n_labels; i++) {
		fprintf(f, "%s%s=\"", i ? "," : "", x->labels[i]);
		put_escaped(f, s->values[i], true);
		fputc('"', f);
	}
	if (le)
		fprintf(f, "%sle=\"%s\"", x->n_labels ? "," : "", le);
	fputc('}', f);
}

static void put_histogram(FILE *f, const struct drv_metric *x, const struct series *s)
{
	uint64_t cum = 0;
	char le[32];

	for (size_t i = 0; i < x->n_buckets; i++) {
		cum += s->le[i];
		fmt_double(le, x->buckets[i]);
		fprintf(f, "%s_bucket", x->name);
		put_labels(f, x, s, le);
		fprintf(f, " %llu\n", (unsigned long long)cum);
	}
	fprintf(f, "%s_bucket", x->name);
	put_labels(f, x, s, "+Inf");
	fprintf(f, " %llu\n%s_sum", (unsigned long long)s->count, x->name);
	put_labels(f, x, s, NULL);
	fputc(' ', f);
	put_value(f, s->sum);
	fprintf(f, "\n%s_count", x->name);
	put_labels(f, x, s, NULL);
	fprintf(f, " %llu\n", (unsigned long long)s->count);
}

static void put_metric(FILE *f, const struct drv_metric *x)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};

	fprintf(f, "# HELP %s ", x->name);
	put_escaped(f, x->help, false);
	fprintf(f, "\n# TYPE %s %s\n", x->name, types[x->kind]);
	for (size_t i = 0; i < x->n_series; i++) {
		const struct series *s = &x->series[i];
		if (x->kind == K_HISTOGRAM) {
			put_histogram(f, x, s);
			continue;
		}
		fputs(x->name, f);
		put_labels(f, x, s, NULL);
		fputc(' ', f);
		put_value(f, s->value);
		fputc('\n', f);
	}
}

static void run_collect_hooks(struct drv_metrics *m)
{
	struct collect_hook hooks[MAX_COLLECT];
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = m->n_hooks;
	memcpy(hooks, m->hooks, n * sizeof(hooks[0]));
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < n; i++)
		hooks[i].fn(m, hooks[i].ctx);
}

int drv_metrics_render(struct drv_metrics *m, char **out, size_t *len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f;
	int rc;

	run_collect_hooks(m);
	f = open_memstream(&buf, &size);
	if (!f)
		return DRV_ENOMEM;
	pthread_mutex_lock(&m->lock);
	for (struct drv_metric *x = m->head; x; x = x->next)
		put_metric(f, x);
	pthread_mutex_unlock(&m->lock);
	rc = ferror(f) ? DRV_ENOMEM : DRV_OK;
	if (fclose(f) != 0)
		rc = DRV_ENOMEM;
	if (rc != DRV_OK) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = size;
	return DRV_OK;
}
