/*
 * deploy_ops.c: the sequencer's TRAFFIC and METRIC actions. Both block (a
 * load balancer's socket, an HTTP GET), so they run outside the engine
 * thread with a bounded timeout and answer with an EV_TRAFFIC / EV_METRIC
 * message through the queue. Everything an operation needs is copied when
 * the action is taken (the weights from the sequencer's state right then);
 * it starts only once the transition is saved. Traffic operations run one
 * after another on one worker, in the order they were taken, so an older
 * switch never lands after a newer one; metric reads each on a thread of
 * their own.
 */
#include "deploy_int.h"

#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy_baseline.h"
#include "err.h"
#include "log.h"
#include "outbound.h"
#include "prom_query.h"
#include "traffic.h"
#include "traffic_conf.h"

struct op {
	struct op *next; /* the traffic worker's queue */
	struct deploy_engine *e;
	const char *fail; /* set: answer this failure at once when started */
	char dep[DRV_SEQ_ID_MAX + 1];
	char id[DRV_SEQ_STEP_ID_MAX];
	char service[DRV_PLAN_NAME_MAX + 1];
	enum drv_seq_event_kind kind;
	/* traffic: a copy of the named balancer of droverd.yaml */
	char *tkind, *balancer, *socket, *backend;
	char **argv; /* kind command: NULL-terminated, or NULL */
	struct drv_traffic_weight *w;
	bool *gains; /* w[i] starts to take traffic: UP in the balancer first */
	size_t n, cap;
	int64_t timeout_ms;
	/* metric */
	char *url;
	/* analysis check: copies of the server (droverd.yaml) and the check */
	struct drv_prom_server sv;
	struct drv_plan_check chk;
	char *query;
	/* a key metric (baseline): how it compares, and the previous release's */
	bool is_metric;
	struct drv_plan_metric met; /* met.k unused: chk */
	char *version;
	bool has_prev;
	struct deploy_prev prev;
};

static void op_free(struct op *o)
{
	if (o == NULL)
		return;
	for (size_t i = 0; i < o->n; i++)
		free((char *)o->w[i].server);
	free(o->w);
	free(o->gains);
	for (size_t i = 0; o->argv != NULL && o->argv[i] != NULL; i++)
		free(o->argv[i]);
	free(o->argv);
	free(o->tkind);
	free(o->balancer);
	free(o->socket);
	free(o->backend);
	free(o->url);
	free(o->sv.name);
	free(o->sv.url);
	if (o->sv.token != NULL)
		memset(o->sv.token, 0, strlen(o->sv.token));
	free(o->sv.token);
	free(o->sv.ca_file);
	free(o->chk.name);
	free(o->query);
	free(o->met.unit);
	free(o->version);
	free(o);
}

/* Post the outcome (result: DRV_SEQ_R_*) with an optional event (taken)
 * and count the operation as done. */
static void op_post(struct op *o, enum drv_seq_result result, double value, const char *message,
                    json_t *data)
{
	struct deploy_engine *e = o->e;
	struct msg *m = calloc(1, sizeof(*m));

	if (m != NULL) {
		m->kind = MSG_OP;
		m->op = o->kind;
		snprintf(m->dep, sizeof(m->dep), "%s", o->dep);
		m->id = strdup(o->id);
		m->message = message ? strdup(message) : NULL;
		m->result = result;
		m->value = value;
		m->data = data;
		data = NULL;
		if (m->id != NULL)
			deploy_post(e, m);
		else
			deploy_msg_free(m);
	}
	json_decref(data);
	op_free(o);
	pthread_mutex_lock(&e->mu);
	e->ops--;
	pthread_cond_broadcast(&e->ops_done);
	pthread_mutex_unlock(&e->mu);
}

static void op_done(struct op *o, bool ok, double value, const char *message)
{
	op_post(o, ok ? DRV_SEQ_R_OK : DRV_SEQ_R_FAILED, value, message, NULL);
}

/* ---- traffic ---- */

static void add_server(void *arg, const char *server, uint32_t weight, bool gains)
{
	struct op *o = arg;

	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 8;
		struct drv_traffic_weight *w = realloc(o->w, cap * sizeof(*w));
		bool *g;

		if (w == NULL)
			return;
		o->w = w;
		g = realloc(o->gains, cap * sizeof(*g));
		if (g == NULL)
			return;
		o->gains = g;
		o->cap = cap;
	}
	o->w[o->n].server = strdup(server);
	o->w[o->n].weight = (int)weight;
	o->gains[o->n] = gains && weight > 0;
	if (o->w[o->n].server != NULL)
		o->n++;
}

/*
 * The servers a move starts to give traffic to (the new slot or set, a
 * canary's new hosts) are UP as the balancer sees them: hosts that just
 * passed the agents' health gate may not have passed HAProxy's checks yet,
 * and weights on servers it holds DOWN answer 503. Bounded by the
 * operation's timeout; the failure names the servers and what the balancer
 * reported for them.
 */
static int wait_targets_up(struct drv_traffic *t, const struct op *o, char *why, size_t cap)
{
	const char **up = calloc(o->n + 1, sizeof(*up));
	char seen[240] = "";
	size_t k = 0;
	int rc;

	if (up == NULL)
		return DRV_ENOMEM;
	for (size_t i = 0; i < o->n; i++) {
		if (o->gains[i])
			up[k++] = o->w[i].server;
	}
	rc = k > 0 ? drv_traffic_wait_up(t, o->backend, up, k, o->timeout_ms, seen, sizeof(seen))
	           : DRV_OK;
	for (size_t i = 0; rc != DRV_OK && seen[0] == '\0' && i < k;
	     i++) /* the kind said nothing */
		snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s%s", i ? ", " : "",
		         up[i]);
	if (rc != DRV_OK)
		snprintf(why, cap,
		         "weights not moved: balancer %s backend %s: %s after %lld ms waiting for "
		         "%zu server(s) to be UP: %s",
		         o->balancer, o->backend, drv_strerror(rc), (long long)o->timeout_ms, k,
		         seen);
	free(up);
	return rc;
}

static void *traffic_main(void *arg)
{
	struct op *o = arg;
	struct drv_traffic_config cfg = {.kind = o->tkind,
	                                 .socket = o->socket,
	                                 .argv = (const char *const *)o->argv,
	                                 .timeout_ms = o->timeout_ms};
	struct drv_traffic *t = NULL;
	char why[400] = "";
	int rc = drv_traffic_open(&cfg, &t);

	if (rc == DRV_OK)
		rc = wait_targets_up(t, o, why, sizeof(why));
	if (rc == DRV_OK)
		rc = drv_traffic_set_weights(t, o->backend, o->w, o->n);
	drv_traffic_close(t);
	if (rc != DRV_OK && why[0] == '\0')
		snprintf(why, sizeof(why), "balancer %s (%s) backend %s: %s", o->balancer, cfg.kind,
		         o->backend, drv_strerror(rc));
	drv_info("deploy", rc == DRV_OK ? "traffic weights set" : "traffic switch failed",
	         "deployment=%s op=%s backend=%s servers=%zu why=\"%s\"", o->dep, o->id, o->backend,
	         o->n, why);
	op_done(o, rc == DRV_OK, 0, why[0] ? why : NULL);
	return NULL;
}

static void *traffic_worker(void *arg)
{
	struct deploy_engine *e = arg;

	pthread_mutex_lock(&e->mu);
	for (;;) {
		struct op *o = e->tq_head;

		if (o == NULL && e->tq_stop)
			break;
		if (o == NULL) {
			pthread_cond_wait(&e->tq_cond, &e->mu);
			continue;
		}
		e->tq_head = o->next;
		if (e->tq_head == NULL)
			e->tq_tail = NULL;
		pthread_mutex_unlock(&e->mu);
		if (e->tq_stop) /* not done: resumed (and re-sent) at the next start */
			op_done(o, false, 0, "droverd is stopping");
		else
			traffic_main(o);
		pthread_mutex_lock(&e->mu);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

int deploy_ops_init(struct deploy_engine *e)
{
	pthread_cond_init(&e->tq_cond, NULL);
	if (pthread_create(&e->tq_thread, NULL, traffic_worker, e) != 0) {
		pthread_cond_destroy(&e->tq_cond);
		return DRV_ESYS;
	}
	e->tq_started = true;
	return DRV_OK;
}

static struct op *op_new(struct deploy_engine *e, struct dep *d, const struct drv_seq_action *a,
                         enum drv_seq_event_kind kind)
{
	struct op *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return NULL;
	o->e = e;
	o->kind = kind;
	snprintf(o->dep, sizeof(o->dep), "%s", d->row.id);
	snprintf(o->id, sizeof(o->id), "%s", a->id);
	if (a->service >= 0 && (size_t)a->service < d->plan->n_services)
		snprintf(o->service, sizeof(o->service), "%s", d->plan->services[a->service].name);
	return o;
}

static void *metric_main(void *arg);
static void *check_main(void *arg);

/* Start an operation taken earlier; a failure is answered at once (the
 * sequencer sees a failed operation rather than waiting for its deadline). */
void deploy_ops_start(struct deploy_engine *e, struct op *o)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc = 0;

	pthread_mutex_lock(&e->mu);
	e->ops++;
	if (o->fail == NULL && o->kind == DRV_SEQ_EV_TRAFFIC) {
		if (e->tq_tail != NULL)
			e->tq_tail->next = o;
		else
			e->tq_head = o;
		e->tq_tail = o;
		pthread_cond_signal(&e->tq_cond);
		pthread_mutex_unlock(&e->mu);
		return;
	}
	pthread_mutex_unlock(&e->mu);
	if (o->fail != NULL) {
		op_done(o, false, 0, o->fail);
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, o->query != NULL ? check_main : metric_main, o);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		op_done(o, false, 0, "cannot start a worker thread");
}

void deploy_ops_discard(struct op *o)
{
	op_free(o);
}

static void traffic_event(struct dep *d, const struct op *o)
{
	json_t *w = json_object();

	for (size_t i = 0; w != NULL && i < o->n; i++)
		json_object_set_new(w, o->w[i].server, json_integer(o->w[i].weight));
	deploy_event(d, "traffic", NULL,
	             json_pack("{s:s, s:s, s:o}", "service", o->service, "backend", o->backend,
	                       "weights", w ? w : json_object()));
}

/* The balancer's command, NULL-terminated (traffic.h appends the operation). */
static char **copy_argv(char *const *a)
{
	size_t n = 0;
	char **v;

	while (a != NULL && a[n] != NULL)
		n++;
	v = n > 0 && n <= DRV_TRAFFIC_ARGV_MAX ? calloc(n + 1, sizeof(*v)) : NULL;
	for (size_t i = 0; v != NULL && i < n; i++) {
		v[i] = strdup(a[i]);
		if (v[i] == NULL) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			v = NULL;
		}
	}
	return v;
}

/* Copy what the named balancer needs; the reason when it cannot be used. */
static const char *use_balancer(struct deploy_engine *e, struct op *o,
                                const struct drv_plan_traffic *tr)
{
	const struct drv_traffic_balancer *b =
	        drv_traffic_balancer_find(e->cfg.balancers, tr->balancer);

	o->balancer = strdup(tr->balancer ? tr->balancer : "");
	if (b == NULL)
		return "the plan's balancer is not defined in droverd.yaml (balancers)";
	o->tkind = strdup(b->kind);
	o->socket = b->socket ? strdup(b->socket) : NULL;
	o->argv = b->argv ? copy_argv(b->argv) : NULL;
	if (o->balancer == NULL || o->tkind == NULL || (b->socket && !o->socket) ||
	    (b->argv && !o->argv))
		return "out of memory";
	if (b->timeout_ms > 0 && b->timeout_ms < o->timeout_ms)
		o->timeout_ms = b->timeout_ms;
	return NULL;
}

struct op *deploy_ops_traffic(struct deploy_engine *e, struct dep *d,
                              const struct drv_seq_action *a)
{
	const struct drv_plan_traffic *tr;
	struct op *o = op_new(e, d, a, DRV_SEQ_EV_TRAFFIC);

	if (o == NULL)
		return NULL;
	tr = &d->plan->services[a->service].strategy.traffic;
	o->backend = strdup(tr->backend ? tr->backend : "");
	o->timeout_ms = tr->timeout_ms > 0 ? tr->timeout_ms : DEPLOY_OP_TIMEOUT;
	if (tr->kind != DRV_TRAFFIC_BALANCER) {
		o->fail = "the traffic switch names no balancer";
		return o;
	}
	o->fail = use_balancer(e, o, tr);
	if (o->fail != NULL)
		return o;
	if (o->backend == NULL || drv_seq_traffic_servers(d->seq, a, add_server, o) != DRV_OK ||
	    o->n == 0) {
		o->fail = "no servers for the traffic switch";
		return o;
	}
	traffic_event(d, o);
	return o;
}

/* ---- metric ---- */

struct body {
	char buf[DEPLOY_METRIC_MAX + 1];
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = size * n;

	if (b->len + len > DEPLOY_METRIC_MAX)
		return 0; /* over the cap: abort */
	memcpy(b->buf + b->len, p, len);
	b->len += len;
	return len;
}

int deploy_metric_value(const char *s, double *out)
{
	char *end;
	double v;

	s += strcspn(s, "-+.0123456789");
	if (*s == '\0')
		return DRV_EINVAL;
	v = strtod(s, &end);
	if (end == s || !isfinite(v))
		return DRV_EINVAL;
	*out = v;
	return DRV_OK;
}

static int fetch(const struct op *o, struct body *b, char *why, size_t cap)
{
	CURL *c = curl_easy_init();
	long status = 0;
	CURLcode cc;

	if (c == NULL)
		return DRV_ENOMEM;
	curl_easy_setopt(c, CURLOPT_URL, o->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (cc != CURLE_OK) {
		snprintf(why, cap, "GET %s: %s", o->url, curl_easy_strerror(cc));
		return DRV_EIO;
	}
	if (status < 200 || status > 299) {
		snprintf(why, cap, "GET %s: HTTP %ld", o->url, status);
		return DRV_EIO;
	}
	b->buf[b->len] = '\0';
	return DRV_OK;
}

static void *metric_main(void *arg)
{
	struct op *o = arg;
	struct body *b = calloc(1, sizeof(*b));
	char why[400] = "";
	double v = 0;
	int rc = b ? fetch(o, b, why, sizeof(why)) : DRV_ENOMEM;

	if (rc == DRV_OK && deploy_metric_value(b->buf, &v) != DRV_OK) {
		rc = DRV_EINVAL;
		snprintf(why, sizeof(why), "GET %s: the answer is not a number", o->url);
	}
	free(b);
	drv_info("deploy", rc == DRV_OK ? "metric read" : "metric read failed",
	         "deployment=%s op=%s value=%g why=\"%s\"", o->dep, o->id, v, why);
	op_done(o, rc == DRV_OK, v, why[0] ? why : NULL);
	return NULL;
}

/* ---- analysis check ---- */

static const enum drv_seq_result verdict_result[] = {
        [DRV_OUTCOME_FAIL] = DRV_SEQ_R_FAILED,
        [DRV_OUTCOME_PASS] = DRV_SEQ_R_OK,
        [DRV_OUTCOME_INCONCLUSIVE] = DRV_SEQ_R_INCONCLUSIVE,
};

/* A key metric's value: recorded as it is; a verdict only against the
 * previous release's value with a regression share (no data: nothing to
 * record, it passes). */
static json_t *metric_verdict(struct op *o, int rc, const struct drv_prom_result *res,
                              const char *why, enum drv_seq_result *r, double *v, char *text,
                              size_t cap)
{
	const char *unit = o->met.unit ? o->met.unit : "";
	json_t *data =
	        json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s}", "service", o->service, "check",
	                  o->chk.name, "server", o->sv.name, "query", o->query, "baseline", 1,
	                  "version", o->version ? o->version : "", "unit", unit);
	double ch = NAN;
	bool bad = false;

	*r = DRV_SEQ_R_OK;
	*v = NAN;
	if (rc != DRV_OK || res->n == 0) {
		snprintf(text, cap, "no value%s%s: nothing recorded", rc != DRV_OK ? ": " : "",
		         rc != DRV_OK ? why : " (empty result)");
	} else {
		*v = res->first;
		bad = o->has_prev && drv_plan_regressed(&o->met, *v, o->prev.value, &ch);
		if (o->has_prev && isfinite(ch))
			snprintf(text, cap, "%.4g%s%s (%s: %.4g%s%s, %+.0f %%)%s", *v,
			         unit[0] ? " " : "", unit, o->prev.version, o->prev.value,
			         unit[0] ? " " : "", unit, ch, bad ? ", a regression" : "");
		else
			snprintf(text, cap, "%.4g%s%s (no earlier release to compare with)", *v,
			         unit[0] ? " " : "", unit);
		if (bad && o->met.regression > 0)
			snprintf(text + strlen(text), cap - strlen(text), " over %u %%",
			         o->met.regression);
		*r = bad ? DRV_SEQ_R_FAILED : DRV_SEQ_R_OK;
	}
	if (data == NULL)
		return NULL;
	json_object_set_new(data, "verdict", json_string(bad ? "fail" : "pass"));
	json_object_set_new(data, "text", json_string(text));
	if (isfinite(*v))
		json_object_set_new(data, "value", json_real(*v));
	if (o->met.regression > 0)
		json_object_set_new(data, "regression_pct", json_integer(o->met.regression));
	json_object_set_new(data, "better", json_string(o->met.higher_better ? "higher" : "lower"));
	if (o->has_prev)
		json_object_set_new(data, "previous",
		                    json_pack("{s:s, s:s, s:f}", "deployment", o->prev.deployment,
		                              "version", o->prev.version, "value", o->prev.value));
	if (isfinite(ch))
		json_object_set_new(data, "change_pct", json_real(ch));
	return data;
}

static void *metric_check_main(struct op *o)
{
	struct drv_prom_result res = {0};
	char why[DRV_PROM_WHY_MAX] = "", text[DRV_PROM_WHY_MAX + 160];
	enum drv_seq_result r;
	double v;
	int rc = drv_prom_query(&o->sv, o->query, &res, why, sizeof(why));
	json_t *data = metric_verdict(o, rc, &res, why, &r, &v, text, sizeof(text));

	drv_info("deploy", "key metric", "deployment=%s op=%s metric=%s text=\"%s\"", o->dep, o->id,
	         o->chk.name, text);
	op_post(o, r, isfinite(v) ? v : 0, text, data);
	return NULL;
}

static void *check_main(void *arg)
{
	struct op *o = arg;

	if (o->is_metric)
		return metric_check_main(o);
	struct drv_prom_result res = {0};
	char why[DRV_PROM_WHY_MAX] = "", text[DRV_PROM_WHY_MAX + 80];
	double v;
	int rc = drv_prom_query(&o->sv, o->query, &res, why, sizeof(why));
	enum drv_plan_outcome out =
	        drv_prom_verdict(&o->chk, rc, &res, why, &v, text, sizeof(text));
	json_t *data = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "service", o->service, "check",
	                         o->chk.name, "server", o->sv.name, "query", o->query, "verdict",
	                         drv_plan_outcome_name(out), "text", text);

	if (data != NULL && isfinite(v))
		json_object_set_new(data, "value", json_real(v));
	if (data != NULL && rc == DRV_OK)
		json_object_set_new(data, "series", json_integer((json_int_t)res.n));
	drv_info("deploy", "analysis check", "deployment=%s op=%s check=%s verdict=%s text=\"%s\"",
	         o->dep, o->id, o->chk.name, drv_plan_outcome_name(out), text);
	op_post(o, verdict_result[out], isfinite(v) ? v : 0, text, data);
	return NULL;
}

/* A key metric: how it compares, and the previous release's value. */
static void metric_op(struct deploy_engine *e, struct dep *d, const struct drv_plan_metric *m,
                      struct op *o)
{
	const struct drv_plan_service *ps = drv_plan_service(d->plan, o->service);

	o->is_metric = true;
	o->met.higher_better = m->higher_better;
	o->met.regression = m->regression;
	o->met.unit = m->unit ? strdup(m->unit) : NULL;
	o->version = strdup(ps && ps->version ? ps->version : d->row.version);
	o->has_prev = deploy_baseline_previous(e->cfg.db, d->plan->environment, o->service,
	                                       m->k.name, d->row.id, &o->prev) == DRV_OK;
	if ((m->unit && !o->met.unit) || o->version == NULL)
		o->fail = "out of memory";
}

/* Copy the named server and the check for the worker. */
static void check_op(struct deploy_engine *e, struct dep *d, const struct drv_seq_action *a,
                     struct op *o)
{
	const struct drv_plan_service *ps = &d->plan->services[a->service];
	const struct drv_prom_server *sv = drv_prom_server_find(e->cfg.prometheus, a->server);
	const struct drv_plan_check *k;
	size_t nc = ps->analysis.n_checks;

	if ((size_t)a->check >= nc + ps->analysis.n_baseline || a->query == NULL) {
		o->fail = "no such analysis check";
		return;
	}
	if ((size_t)a->check >= nc)
		metric_op(e, d, &ps->analysis.baseline[a->check - nc], o);
	k = (size_t)a->check < nc ? &ps->analysis.checks[a->check]
	                          : &ps->analysis.baseline[a->check - nc].k;
	o->chk = *k;
	o->chk.name = strdup(k->name);
	o->chk.query = NULL;
	o->query = strdup(a->query);
	if (sv == NULL) {
		o->fail = "the analysis names a prometheus server droverd.yaml does not define";
		return;
	}
	o->sv.name = strdup(sv->name);
	o->sv.url = strdup(sv->url);
	o->sv.token = sv->token ? strdup(sv->token) : NULL;
	o->sv.ca_file = sv->ca_file ? strdup(sv->ca_file) : NULL;
	o->sv.timeout_ms = sv->timeout_ms;
	if (o->chk.name == NULL || o->query == NULL || o->sv.name == NULL || o->sv.url == NULL ||
	    (sv->token && !o->sv.token) || (sv->ca_file && !o->sv.ca_file))
		o->fail = "out of memory";
	deploy_event(d, "analysis_query", NULL,
	             json_pack("{s:s, s:s, s:s, s:s}", "service", ps->name, "check", k->name,
	                       "server", sv->name, "query", a->query));
}

struct op *deploy_ops_metric(struct deploy_engine *e, struct dep *d, const struct drv_seq_action *a)
{
	const struct drv_plan_strategy *st;
	struct op *o = op_new(e, d, a, DRV_SEQ_EV_METRIC);

	if (o == NULL)
		return NULL;
	if (a->check >= 0) {
		check_op(e, d, a, o);
		if (o->query == NULL)
			o->fail = o->fail ? o->fail : "out of memory";
		return o;
	}
	st = &d->plan->services[a->service].strategy;
	o->url = strdup(a->url ? a->url : "");
	o->timeout_ms = st->metric_timeout_ms > 0      ? st->metric_timeout_ms
	                : e->cfg.metric_timeout_ms > 0 ? e->cfg.metric_timeout_ms
	                                               : 5000;
	if (o->url == NULL)
		o->fail = "out of memory";
	else if (!drv_outbound_allowed(e->cfg.outbound_allow, o->url))
		o->fail = "the analysis URL is not allowed by droverd.yaml outbound.allow";
	return o;
}

void deploy_ops_fini(struct deploy_engine *e)
{
	pthread_mutex_lock(&e->mu);
	e->tq_stop = true;
	pthread_cond_signal(&e->tq_cond);
	pthread_mutex_unlock(&e->mu);
	if (e->tq_started) {
		pthread_join(e->tq_thread, NULL); /* after the queued switches, each bounded */
		pthread_cond_destroy(&e->tq_cond);
		e->tq_started = false;
	}
	pthread_mutex_lock(&e->mu);
	while (e->ops > 0)
		pthread_cond_wait(&e->ops_done, &e->mu);
	pthread_mutex_unlock(&e->mu);
}
