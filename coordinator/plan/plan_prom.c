/*
 * plan_prom.c: a service's Prometheus analysis (`analysis.prometheus`):
 * its fields, the conditions checks compare against, and the filling in
 * of a query's placeholders. Pure: no I/O (the deploy engine queries).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "plan_int.h"

#define CHECK_INTERVAL_MS 10000
#define CHECK_INTERVAL_LO 100
#define FAILURES_MAX      100

static const char *const outcome_names[] = {"fail", "pass", "inconclusive", NULL};

const char *drv_plan_outcome_name(enum drv_plan_outcome o)
{
	return (unsigned)o < 3 ? outcome_names[o] : "fail";
}

/* ---- conditions ---- */

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* A finite number at *p; advances *p past it. */
static bool read_num(const char **p, double *out)
{
	char *end;
	double v;

	*p = skip_ws(*p);
	if (**p == '\0')
		return false;
	v = strtod(*p, &end);
	if (end == *p || !isfinite(v))
		return false;
	*p = end;
	*out = v;
	return true;
}

static bool read_word(const char **p, const char *w)
{
	size_t n = strlen(w);

	*p = skip_ws(*p);
	if (strncmp(*p, w, n) != 0 || isalnum((unsigned char)(*p)[n]))
		return false;
	*p += n;
	return true;
}

int drv_plan_cond_parse(const char *s, enum drv_plan_cond *cond, double *a, double *b)
{
	const char *p = skip_ws(s);
	enum drv_plan_cond c;
	double x = 0, y = 0;

	if (strlen(s) > 100)
		return DRV_EINVAL;
	if (read_word(&p, "between")) {
		if (!read_num(&p, &x) || !read_word(&p, "and") || !read_num(&p, &y) || x > y)
			return DRV_EINVAL;
		c = DRV_COND_BETWEEN;
	} else if (p[0] == '<' || p[0] == '>') {
		bool eq = p[1] == '=';
		c = p[0] == '<' ? (eq ? DRV_COND_LE : DRV_COND_LT)
		                : (eq ? DRV_COND_GE : DRV_COND_GT);
		p += eq ? 2 : 1;
		if (!read_num(&p, &x))
			return DRV_EINVAL;
	} else {
		return DRV_EINVAL;
	}
	if (*skip_ws(p) != '\0')
		return DRV_EINVAL;
	*cond = c;
	*a = x;
	*b = y;
	return DRV_OK;
}

bool drv_plan_cond_holds(enum drv_plan_cond cond, double a, double b, double value)
{
	if (isnan(value))
		return false;
	switch (cond) {
	case DRV_COND_LT: return value < a;
	case DRV_COND_LE: return value <= a;
	case DRV_COND_GT: return value > a;
	case DRV_COND_GE: return value >= a;
	default: return value >= a && value <= b;
	}
}

void drv_plan_cond_format(enum drv_plan_cond cond, double a, double b, char *buf, size_t cap)
{
	static const char *const ops[] = {"<", "<=", ">", ">="};

	if (cond == DRV_COND_BETWEEN)
		snprintf(buf, cap, "between %.15g and %.15g", a, b);
	else
		snprintf(buf, cap, "%s %.15g", ops[cond], a);
}

/* ---- placeholders ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool bad;
};

static void put(struct sbuf *b, char ch)
{
	if (b->bad)
		return;
	if (b->len + 2 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		char *n = cap > 4u * DRV_PLAN_QUERY_MAX ? NULL : realloc(b->p, cap);
		if (n == NULL) {
			b->bad = true;
			return;
		}
		b->p = n;
		b->cap = cap;
	}
	b->p[b->len++] = ch;
	b->p[b->len] = '\0';
}

/* Inside a PromQL double-quoted string: backslash, quote and controls. */
static void put_lit(struct sbuf *b, char ch)
{
	if (ch == '\\' || ch == '"') {
		put(b, '\\');
		put(b, ch);
	} else if (ch == '\n') {
		put(b, '\\');
		put(b, 'n');
	} else if ((unsigned char)ch < 0x20 || ch == 0x7f) {
		char hex[8];
		snprintf(hex, sizeof(hex), "\\x%02x", (unsigned char)ch);
		for (char *h = hex; *h; h++)
			put(b, *h);
	} else {
		put(b, ch);
	}
}

static void put_text(struct sbuf *b, const char *s)
{
	for (; s != NULL && *s; s++)
		put_lit(b, *s);
}

/* A regex metacharacter gets a backslash, itself escaped in the literal. */
static void put_regex(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		if (strchr(".+*?()[]{}|^$\\", *s) != NULL) {
			put(b, '\\');
			put(b, '\\');
		}
		put_lit(b, *s);
	}
}

char *drv_plan_query_expand(const char *tmpl, const char *service, const char *version,
                            const char *const *hosts, size_t n_hosts)
{
	struct sbuf b = {0};
	const char *p = tmpl;

	put(&b, ' '); /* so that an empty template gives "" */
	if (b.bad)
		return NULL;
	b.len = 0;
	b.p[0] = '\0';
	while (*p && !b.bad) {
		if (strncmp(p, "{{service}}", 11) == 0) {
			put_text(&b, service);
			p += 11;
		} else if (strncmp(p, "{{version}}", 11) == 0) {
			put_text(&b, version);
			p += 11;
		} else if (strncmp(p, "{{hosts}}", 9) == 0) {
			for (size_t i = 0; i < n_hosts; i++) {
				if (i > 0)
					put(&b, '|');
				put_regex(&b, hosts[i]);
			}
			p += 9;
		} else {
			put(&b, *p++);
		}
	}
	if (b.bad) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* ---- fields ---- */

void plan_analysis_free(struct drv_plan_analysis *an)
{
	for (size_t i = 0; i < an->n_checks; i++) {
		free(an->checks[i].name);
		free(an->checks[i].query);
	}
	free(an->checks);
	for (size_t i = 0; i < an->n_baseline; i++) {
		free(an->baseline[i].k.name);
		free(an->baseline[i].k.query);
		free(an->baseline[i].unit);
	}
	free(an->baseline);
	free(an->server);
	memset(an, 0, sizeof(*an));
}

static void read_outcome(struct vctx *c, const json_t *v, const char *path, const char *key,
                         enum drv_plan_outcome *out)
{
	int o = (int)*out;

	if (plan_read_enum(c, v, path, key, outcome_names, &o) == 1)
		*out = (enum drv_plan_outcome)o;
}

static void read_condition(struct vctx *c, const json_t *v, const char *path,
                           struct drv_plan_check *k)
{
	const json_t *cv = json_object_get(v, "condition");
	char p[DRV_YJ_PATH_MAX];

	plan_pjoin(p, path, "condition");
	if (cv == NULL) {
		plan_verr(c, p, "required: \"< 0.01\", \"> 0.99\" or \"between A and B\"");
		return;
	}
	if (!json_is_string(cv) ||
	    drv_plan_cond_parse(json_string_value(cv), &k->cond, &k->a, &k->b) != DRV_OK)
		plan_verr(c, p,
		          "must be \"< N\", \"<= N\", \"> N\", \">= N\" or \"between A and B\" "
		          "with A <= B (quote it: a leading > starts a folded block in YAML)");
}

static void read_check(struct vctx *c, const json_t *v, const char *path, size_t i,
                       struct drv_plan_check *k)
{
	char p[DRV_YJ_PATH_MAX];

	k->interval_ms = CHECK_INTERVAL_MS;
	k->failures = 1;
	k->on_empty = DRV_OUTCOME_FAIL;
	k->on_error = DRV_OUTCOME_INCONCLUSIVE;
	k->line = drv_yj_line(c->lines, path);
	if (!plan_want_object(c, v, path))
		return;
	plan_check_keys(c, v, path,
	                (const char *const[]){"name", "query", "condition", "interval", "failures",
	                                      "on_empty", "on_error", NULL});
	if (plan_read_name(c, v, path, "name", &k->name) != 1) {
		char n[32];
		snprintf(n, sizeof(n), "check-%zu", i + 1);
		k->name = plan_strdup(c, n);
	}
	plan_pjoin(p, path, "query");
	if (plan_read_string(c, v, path, "query", &k->query) == 0)
		plan_verr(c, p, "required: a PromQL expression");
	else if (k->query != NULL && strlen(k->query) > DRV_PLAN_QUERY_MAX)
		plan_verr(c, p, "longer than %d bytes", DRV_PLAN_QUERY_MAX);
	read_condition(c, v, path, k);
	if (plan_read_duration(c, v, path, "interval", &k->interval_ms) == 1 &&
	    k->interval_ms < CHECK_INTERVAL_LO) {
		plan_pjoin(p, path, "interval");
		plan_verr(c, p, "must be at least 100ms");
	}
	plan_read_uint(c, v, path, "failures", 1, FAILURES_MAX, &k->failures);
	read_outcome(c, v, path, "on_empty", &k->on_empty);
	read_outcome(c, v, path, "on_error", &k->on_error);
}

static void read_checks(struct vctx *c, const json_t *pr, const char *path,
                        struct drv_plan_analysis *an)
{
	const json_t *list = json_object_get(pr, "checks");
	char p[DRV_YJ_PATH_MAX], ip[DRV_YJ_PATH_MAX];
	size_t n = json_array_size(list);

	plan_pjoin(p, path, "checks");
	if (list == NULL && json_object_get(pr, "baseline") != NULL)
		return; /* only key metrics */
	if (!json_is_array(list) || n == 0 || n > DRV_PLAN_MAX_CHECKS) {
		plan_verr(c, p, "required: a list of 1 to %d checks", DRV_PLAN_MAX_CHECKS);
		return;
	}
	an->checks = calloc(n, sizeof(*an->checks));
	if (an->checks == NULL) {
		c->oom = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		plan_pindex(ip, p, i);
		read_check(c, json_array_get(list, i), ip, i, &an->checks[an->n_checks++]);
	}
}

/* ---- baseline: the release's key metrics ---- */

/* "20%": 1..DRV_PLAN_REGRESSION_HI percent. */
static void read_regression(struct vctx *c, const json_t *v, const char *path,
                            struct drv_plan_metric *m)
{
	const json_t *r = json_object_get(v, "regression");
	const char *t = json_string_value(r);
	char p[DRV_YJ_PATH_MAX], *end;
	long pct;

	if (r == NULL)
		return;
	plan_pjoin(p, path, "regression");
	pct = t != NULL && isdigit((unsigned char)t[0]) ? strtol(t, &end, 10) : -1;
	if (pct < 1 || pct > DRV_PLAN_REGRESSION_HI || strcmp(end, "%") != 0) {
		plan_verr(c, p,
		          "must be a share worse than the previous release, \"1%%\" to \"%d%%\"",
		          DRV_PLAN_REGRESSION_HI);
		return;
	}
	m->regression = (uint32_t)pct;
}

static void read_metric(struct vctx *c, const json_t *v, const char *path, size_t i,
                        struct drv_plan_metric *m)
{
	static const char *const better_names[] = {"lower", "higher", NULL};
	char p[DRV_YJ_PATH_MAX];
	int better = 0;

	m->k.interval_ms = CHECK_INTERVAL_MS;
	m->k.failures = 1;
	m->k.on_empty = m->k.on_error = DRV_OUTCOME_PASS; /* no data: nothing recorded */
	m->k.line = drv_yj_line(c->lines, path);
	if (!plan_want_object(c, v, path))
		return;
	plan_check_keys(c, v, path,
	                (const char *const[]){"name", "query", "unit", "better", "regression",
	                                      "interval", "failures", NULL});
	plan_pjoin(p, path, "name");
	if (plan_read_name(c, v, path, "name", &m->k.name) == 0)
		plan_verr(c, p, "required: the metric's name (p95-latency)");
	plan_pjoin(p, path, "query");
	if (plan_read_string(c, v, path, "query", &m->k.query) == 0)
		plan_verr(c, p, "required: a PromQL expression");
	else if (m->k.query != NULL && strlen(m->k.query) > DRV_PLAN_QUERY_MAX)
		plan_verr(c, p, "longer than %d bytes", DRV_PLAN_QUERY_MAX);
	plan_pjoin(p, path, "unit");
	if (plan_read_string(c, v, path, "unit", &m->unit) == 1 &&
	    strlen(m->unit) > DRV_PLAN_UNIT_MAX)
		plan_verr(c, p, "at most %d bytes", DRV_PLAN_UNIT_MAX);
	if (plan_read_enum(c, v, path, "better", better_names, &better) == 1)
		m->higher_better = better == 1;
	read_regression(c, v, path, m);
	if (plan_read_duration(c, v, path, "interval", &m->k.interval_ms) == 1 &&
	    m->k.interval_ms < CHECK_INTERVAL_LO) {
		plan_pjoin(p, path, "interval");
		plan_verr(c, p, "must be at least 100ms");
	}
	plan_read_uint(c, v, path, "failures", 1, FAILURES_MAX, &m->k.failures);
	(void)i;
}

static void read_baseline(struct vctx *c, const json_t *pr, const char *path,
                          struct drv_plan_analysis *an)
{
	const json_t *list = json_object_get(pr, "baseline");
	char p[DRV_YJ_PATH_MAX], ip[DRV_YJ_PATH_MAX];
	size_t n = json_array_size(list);

	if (list == NULL)
		return;
	plan_pjoin(p, path, "baseline");
	if (!json_is_array(list) || n == 0 || n > DRV_PLAN_MAX_BASELINE) {
		plan_verr(c, p, "must be a list of 1 to %d key metrics ({name, query, ...})",
		          DRV_PLAN_MAX_BASELINE);
		return;
	}
	an->baseline = calloc(n, sizeof(*an->baseline));
	if (an->baseline == NULL) {
		c->oom = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		plan_pindex(ip, p, i);
		read_metric(c, json_array_get(list, i), ip, i, &an->baseline[an->n_baseline]);
		for (size_t j = 0; j < an->n_baseline; j++) {
			const char *a = an->baseline[j].k.name, *b = an->baseline[i].k.name;
			if (a != NULL && b != NULL && strcmp(a, b) == 0)
				plan_verr(c, ip, "the metric name '%s' is used twice", b);
		}
		an->n_baseline++;
	}
}

bool drv_plan_regressed(const struct drv_plan_metric *m, double value, double prev,
                        double *change_pct)
{
	double ch;

	*change_pct = NAN;
	if (!isfinite(value) || !isfinite(prev) || prev == 0)
		return false;
	ch = (value - prev) / fabs(prev) * 100.0;
	*change_pct = ch;
	if (m->regression == 0)
		return false;
	return m->higher_better ? -ch > (double)m->regression : ch > (double)m->regression;
}

/*
 * `analysis` of a service or of defaults: { prometheus: { server, checks } }.
 * A service's analysis replaces the default one as a whole.
 */
void plan_analysis_read(struct vctx *c, const json_t *v, const char *path,
                        struct drv_plan_analysis *an)
{
	const json_t *pr;
	char p[DRV_YJ_PATH_MAX], sp[DRV_YJ_PATH_MAX];

	if (v == NULL || !plan_want_object(c, v, path))
		return;
	plan_check_keys(c, v, path, (const char *const[]){"prometheus", NULL});
	pr = json_object_get(v, "prometheus");
	plan_pjoin(p, path, "prometheus");
	if (pr == NULL || !plan_want_object(c, pr, p))
		return;
	plan_analysis_free(an);
	plan_check_keys(c, pr, p, (const char *const[]){"server", "checks", "baseline", NULL});
	plan_pjoin(sp, p, "server");
	if (plan_read_name(c, pr, p, "server", &an->server) == 0)
		plan_verr(c, sp, "required: the name of a Prometheus server in droverd.yaml");
	an->line = drv_yj_line(c->lines, sp);
	read_checks(c, pr, p, an);
	read_baseline(c, pr, p, an);
}

/* ---- rollback_on_alerts ---- */

void plan_alerts_free(struct drv_plan_service *s)
{
	for (size_t i = 0; i < s->n_alert_rules; i++)
		plan_kv_free(s->alert_rules[i].labels, s->alert_rules[i].n);
	free(s->alert_rules);
	s->alert_rules = NULL;
	s->n_alert_rules = 0;
}

static bool label_name_ok(const char *k)
{
	if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || *k == '_'))
		return false;
	for (k++; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
		      (*k >= '0' && *k <= '9') || *k == '_'))
			return false;
	return true;
}

static void read_rule(struct vctx *c, const json_t *v, const char *path,
                      struct drv_plan_alert_rule *r)
{
	const char *key;
	json_t *val;
	char p[DRV_YJ_PATH_MAX];

	r->line = drv_yj_line(c->lines, path);
	if (!json_is_object(v) || json_object_size(v) == 0 ||
	    json_object_size(v) > DRV_PLAN_MAX_ALERT_LABELS) {
		plan_verr(c, path, "must be a mapping of 1 to %d label: value matchers",
		          DRV_PLAN_MAX_ALERT_LABELS);
		return;
	}
	r->labels = calloc(json_object_size(v), sizeof(*r->labels));
	if (r->labels == NULL) {
		c->oom = true;
		return;
	}
	json_object_foreach((json_t *)v, key, val)
	{
		plan_pjoin(p, path, key);
		if (!label_name_ok(key) || strlen(key) > DRV_PLAN_NAME_MAX) {
			plan_verr(c, p, "a label name is [A-Za-z_][A-Za-z0-9_]*");
			continue;
		}
		if (!json_is_string(val) || json_string_length(val) > DRV_PLAN_ALERT_VALUE_MAX ||
		    strlen(json_string_value(val)) != json_string_length(val)) {
			plan_verr(c, p, "must be a string of at most %d bytes",
			          DRV_PLAN_ALERT_VALUE_MAX);
			continue;
		}
		r->labels[r->n].key = plan_strdup(c, key);
		r->labels[r->n].value = plan_strdup(c, json_string_value(val));
		r->n++;
	}
}

/* `rollback_on_alerts` and `alert_precheck` of a service or of defaults
 * (a service's list replaces the default one). */
void plan_alerts_read(struct vctx *c, const json_t *v, const char *path, struct drv_plan_service *s)
{
	const json_t *list = json_object_get(v, "rollback_on_alerts");
	const json_t *pre = json_object_get(v, "alert_precheck");
	char p[DRV_YJ_PATH_MAX], ip[DRV_YJ_PATH_MAX];
	size_t n = json_array_size(list);

	if (pre != NULL) {
		plan_pjoin(p, path, "alert_precheck");
		if (json_is_boolean(pre))
			s->alert_precheck = json_is_true(pre);
		else
			plan_verr(c, p, "must be true or false");
	}
	if (list == NULL)
		return;
	plan_pjoin(p, path, "rollback_on_alerts");
	if (!json_is_array(list) || n > DRV_PLAN_MAX_ALERT_RULES) {
		plan_verr(c, p, "must be a list of at most %d rules ({alertname: X, ...})",
		          DRV_PLAN_MAX_ALERT_RULES);
		return;
	}
	plan_alerts_free(s);
	s->alert_rules = calloc(n + 1, sizeof(*s->alert_rules));
	if (s->alert_rules == NULL) {
		c->oom = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		plan_pindex(ip, p, i);
		read_rule(c, json_array_get(list, i), ip, &s->alert_rules[s->n_alert_rules++]);
	}
}

static bool value_matches(const char *want, const struct drv_plan_service *ps, const char *got)
{
	char buf[4 * DRV_PLAN_ALERT_VALUE_MAX];
	size_t o = 0;

	for (const char *p = want; *p && o + 1 < sizeof(buf);) {
		const char *sub = NULL;
		size_t skip = 0;
		if (strncmp(p, "{{service}}", 11) == 0)
			sub = ps->name, skip = 11;
		else if (strncmp(p, "{{version}}", 11) == 0)
			sub = ps->version ? ps->version : "", skip = 11;
		if (sub != NULL) {
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s", sub);
			if (o >= sizeof(buf))
				return false;
			p += skip;
		} else {
			buf[o++] = *p++;
		}
	}
	buf[o < sizeof(buf) ? o : sizeof(buf) - 1] = '\0';
	return strcmp(buf, got) == 0;
}

int drv_plan_alert_match(const struct drv_plan_service *ps, const json_t *labels)
{
	for (size_t i = 0; i < ps->n_alert_rules; i++) {
		const struct drv_plan_alert_rule *r = &ps->alert_rules[i];
		bool all = r->n > 0;

		for (size_t j = 0; j < r->n && all; j++) {
			const char *got =
			        json_string_value(json_object_get(labels, r->labels[j].key));
			all = got != NULL && value_matches(r->labels[j].value, ps, got);
		}
		if (all)
			return (int)i;
	}
	return -1;
}
