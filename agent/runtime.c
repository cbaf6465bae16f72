/*
 * runtime.c: release switching per service (prestage, start with a health
 * gate, stop, activate-previous, finalize, health-check), the supervisor
 * thread (driver ticks: crash restarts, log rotation) and the health thread
 * (damped continuous checks whose transitions become STEP_HEALTH reports).
 *
 * The database says what should be; the drivers say what is. Reports are
 * built from the drivers, so after a crash the agent never claims a release
 * runs because a row says so.
 */
#include "runtime.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "clock.h"
#include "driver.h"
#include "err.h"
#include "fileshash.h"
#include "health.h"
#include "log.h"
#include "logjournal.h"
#include "logread.h"
#include "puller.h"

#define TICK_MS          200
#define NO_CHECK_WAIT_MS 1000 /* without a health check: running this long = started */
#define GATE_POLL_MS     50
#define DEFAULT_GRACE_MS 10000

struct mon {
	struct mon *next;
	char name[DRIVER_INSTANCE_MAX];
	char *service, *slot, *cwd;
	Drover__HealthCheck *hc; /* owned copy */
	struct privs pv;         /* exec checks run as the service's user */
	bool pv_ok;
	char pv_err[200];
	uint32_t port;
	struct health_params par;
	struct health_sched hs; /* damping and when the next probe is due */
	char detail[HEALTH_DETAIL_MAX];
	bool busy, gone;
};

struct runtime {
	struct runtime_config cfg;
	struct state *st;
	struct puller *puller;
	void *dstate[DRIVER_SLOTS];
	pthread_mutex_t lock; /* mons */
	pthread_cond_t cond;
	struct mon *mons;
	struct stop_token stopping;
	pthread_t sup_thread, health_thread;
	bool threads;
};

/* --- helpers --- */

static const struct driver_ops *ops_of(const Drover__ServiceSpec *spec)
{
	return driver_find(spec ? spec->driver : DROVER__DRIVER__DRIVER_EXEC);
}

static void *dstate_of(struct runtime *rt, const Drover__ServiceSpec *spec)
{
	int d = spec ? (int)spec->driver : 0;

	if (d == DROVER__DRIVER__DRIVER_UNSPECIFIED)
		d = DROVER__DRIVER__DRIVER_EXEC;
	return d > 0 && d < DRIVER_SLOTS ? rt->dstate[d] : NULL;
}

static void spec_instance(const Drover__ServiceSpec *s, const char *dir, struct driver_instance *in)
{
	memset(in, 0, sizeof(*in));
	in->service = s->name;
	in->slot = s->slot ? s->slot : "";
	in->spec = s;
	in->reference = s->image ? s->image->reference : "";
	in->digest = s->image ? s->image->digest : "";
	in->release_dir = dir;
	driver_instance_name(in);
}

/* When a step's pull must be over: its budget from now (the step's own
 * deadline, from the plan); 0 when the instruction gives none. */
static int64_t pull_deadline(const Drover__Instruction *ins)
{
	return ins->step_deadline_ms > 0 ? drv_mono_ms() + (int64_t)ins->step_deadline_ms : 0;
}

static void rel_instance(const struct state_release *r, struct driver_instance *in)
{
	spec_instance(r->spec, r->root, in);
	in->digest = r->digest;
}

static enum driver_state rel_status(struct runtime *rt, const struct state_release *r,
                                    struct driver_status *ds)
{
	struct driver_instance in;
	const struct driver_ops *ops = ops_of(r->spec);

	memset(ds, 0, sizeof(*ds));
	rel_instance(r, &in);
	if (ops == NULL || ops->status(dstate_of(rt, r->spec), &in, ds) != DRV_OK)
		ds->state = DRIVER_FAILED;
	return ds->state;
}

static void emit(struct runtime *rt, Drover__StepResult result, const char *service,
                 const char *msg, Drover__HealthTransition *ht)
{
	Drover__Release **rel = NULL, **mine;
	size_t n = 0, m = 0;
	Drover__Report r;

	if (rt->cfg.events == NULL)
		return;
	drover__report__init(&r);
	r.result = result;
	r.service = (char *)service;
	r.message = (char *)msg;
	r.health = ht;
	r.sent_at_ms = drv_wall_ms();
	if (runtime_releases(rt, &rel, &n) == DRV_OK) {
		mine = rel;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(rel[i]->service, service) == 0)
				mine[m++] = rel[i];
			else
				drover__release__free_unpacked(rel[i], NULL);
		}
		r.releases = mine;
		r.n_releases = m;
	}
	rt->cfg.events(&r, rt->cfg.events_arg);
	for (size_t i = 0; i < m; i++)
		drover__release__free_unpacked(rel[i], NULL);
	free(rel);
}

static void notice(const char *service, const char *slot, const char *msg, void *arg)
{
	(void)slot;
	emit(arg, DROVER__STEP_RESULT__STEP_STATUS, service, msg, NULL);
}

/* --- health monitors --- */

static Drover__HealthCheck *copy_hc(const Drover__HealthCheck *hc)
{
	size_t len = drover__health_check__get_packed_size(hc);
	uint8_t *buf = malloc(len ? len : 1);
	Drover__HealthCheck *c;

	if (buf == NULL)
		return NULL;
	drover__health_check__pack(hc, buf);
	c = drover__health_check__unpack(NULL, len, buf);
	free(buf);
	return c;
}

static void mon_free(struct mon *m)
{
	if (m == NULL)
		return;
	free(m->service);
	free(m->slot);
	free(m->cwd);
	if (m->hc != NULL)
		drover__health_check__free_unpacked(m->hc, NULL);
	free(m);
}

/* Unlink (and free unless a probe holds it) the monitor of name. Locked. */
static void mon_drop_locked(struct runtime *rt, const char *name)
{
	struct mon **pp = &rt->mons;

	while (*pp != NULL) {
		struct mon *m = *pp;
		if (strcmp(m->name, name) == 0) {
			*pp = m->next;
			if (m->busy)
				m->gone = true;
			else
				mon_free(m);
			continue;
		}
		pp = &m->next;
	}
}

static void mon_stop(struct runtime *rt, const char *name)
{
	pthread_mutex_lock(&rt->lock);
	mon_drop_locked(rt, name);
	pthread_mutex_unlock(&rt->lock);
}

/* Who exec checks of the service run as: its user, no capabilities. */
static bool health_privs(const Drover__ServiceSpec *spec, struct privs *pv, char *err, size_t size)
{
	return privs_resolve(spec->user, spec->group, PRIVS_DEFAULT_USER, NULL, 0, true, pv, err,
	                     size) == DRV_OK;
}

/* Start watching an instance (replacing an older monitor of the same name). */
static void mon_start(struct runtime *rt, const struct driver_instance *in)
{
	const Drover__HealthCheck *hc = in->spec->health;
	struct mon *m;

	if (hc == NULL || health_kind_find(hc->kind) == NULL) {
		mon_stop(rt, in->name);
		return;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return;
	snprintf(m->name, sizeof(m->name), "%s", in->name);
	m->service = strdup(in->service);
	m->slot = strdup(in->slot);
	if (in->release_dir != NULL && in->release_dir[0] != '\0' &&
	    asprintf(&m->cwd, "%s/rootfs", in->release_dir) < 0)
		m->cwd = NULL;
	m->hc = copy_hc(hc);
	m->pv_ok = health_privs(in->spec, &m->pv, m->pv_err, sizeof(m->pv_err));
	m->port = hc->port ? hc->port : in->spec->port;
	health_params_of(hc, &m->par);
	health_sched_init(&m->hs, &m->par, drv_mono_ms());
	if (m->service == NULL || m->slot == NULL || m->hc == NULL) {
		mon_free(m);
		return;
	}
	pthread_mutex_lock(&rt->lock);
	mon_drop_locked(rt, in->name);
	m->next = rt->mons;
	rt->mons = m;
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->lock);
}

/* The monitor's state; HEALTH_UNKNOWN when there is none. */
static enum health_state mon_state(struct runtime *rt, const char *name, char *detail, size_t size)
{
	enum health_state s = HEALTH_UNKNOWN;

	pthread_mutex_lock(&rt->lock);
	for (struct mon *m = rt->mons; m != NULL; m = m->next) {
		if (strcmp(m->name, name) == 0) {
			s = m->hs.d.state;
			if (detail != NULL)
				snprintf(detail, size, "%s", m->detail);
		}
	}
	pthread_mutex_unlock(&rt->lock);
	return s;
}

static struct timespec realtime_in(int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/* The monitor's state, waiting up to wait_ms for it to change when it is not
 * healthy yet: the health thread signals every flip, so a gate sees one at
 * once instead of at its next poll. */
static enum health_state mon_wait_up(struct runtime *rt, const char *name, int64_t wait_ms,
                                     char *detail, size_t size)
{
	struct timespec ts = realtime_in(wait_ms);
	enum health_state s;

	pthread_mutex_lock(&rt->lock);
	for (;;) {
		s = HEALTH_UNKNOWN;
		for (struct mon *m = rt->mons; m != NULL; m = m->next) {
			if (strcmp(m->name, name) == 0) {
				s = m->hs.d.state;
				snprintf(detail, size, "%s", m->detail);
			}
		}
		if (s == HEALTH_UP || wait_ms <= 0 ||
		    pthread_cond_timedwait(&rt->cond, &rt->lock, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&rt->lock);
	return s;
}

static bool mon_has(struct runtime *rt, const char *name)
{
	bool found = false;

	pthread_mutex_lock(&rt->lock);
	for (struct mon *m = rt->mons; m != NULL; m = m->next)
		found = found || strcmp(m->name, name) == 0;
	pthread_mutex_unlock(&rt->lock);
	return found;
}

static void transition(struct runtime *rt, struct mon *m, int64_t prev_ms)
{
	Drover__HealthTransition ht;
	char msg[512];

	drover__health_transition__init(&ht);
	ht.healthy = m->hs.d.state == HEALTH_UP;
	ht.previous_state_ms = (uint64_t)(prev_ms > 0 ? prev_ms : 0);
	ht.detail = m->detail;
	snprintf(msg, sizeof(msg), "%s is %s after %lld ms in the previous state (%s)", m->name,
	         health_state_name(m->hs.d.state), (long long)prev_ms, m->detail);
	drv_log(m->hs.d.state == HEALTH_UP ? DRV_LOG_INFO : DRV_LOG_WARN, "health",
	        "health changed", "instance=%s state=%s previous_state_ms=%lld detail=\"%s\"",
	        m->name, health_state_name(m->hs.d.state), (long long)prev_ms, m->detail);
	emit(rt, DROVER__STEP_RESULT__STEP_HEALTH, m->service, msg, &ht);
}

/* Probe the most overdue monitor, or wait until one is due. Locked on entry/exit. */
static void health_round(struct runtime *rt)
{
	int64_t now = drv_mono_ms(), prev_ms = 0;
	struct mon *due = NULL;
	char detail[HEALTH_DETAIL_MAX];
	bool ok, flipped;

	for (struct mon *m = rt->mons; m != NULL; m = m->next)
		if (due == NULL || m->hs.next_at < due->hs.next_at)
			due = m;
	if (due == NULL || due->hs.next_at > now) {
		struct timespec ts = realtime_in(due ? due->hs.next_at - now : 1000);
		pthread_cond_timedwait(&rt->cond, &rt->lock, &ts);
		return;
	}
	due->busy = true;
	pthread_mutex_unlock(&rt->lock);
	struct health_target t = {.host = due->hc->host,
	                          .port = due->port,
	                          .cwd = due->cwd,
	                          .privs = due->pv_ok ? &due->pv : NULL,
	                          .privs_err = due->pv_err};
	ok = health_kind_find(due->hc->kind)
	             ->probe(due->hc, &t, due->par.timeout_ms, detail, sizeof(detail));
	pthread_mutex_lock(&rt->lock);
	if (!due->gone) {
		snprintf(due->detail, sizeof(due->detail), "%s", detail);
		now = drv_mono_ms();
		flipped = health_sched_feed(&due->hs, &due->par, ok, now, &prev_ms);
		if (flipped) {
			pthread_cond_broadcast(&rt->cond); /* a health gate waits for it */
			/* Still busy: a concurrent mon_stop only marks it gone. */
			pthread_mutex_unlock(&rt->lock);
			transition(rt, due, prev_ms);
			pthread_mutex_lock(&rt->lock);
		}
	}
	due->busy = false;
	if (due->gone)
		mon_free(due);
}

static void *health_main(void *arg)
{
	struct runtime *rt = arg;

	pthread_mutex_lock(&rt->lock);
	while (!stop_token_stopped(&rt->stopping))
		health_round(rt);
	pthread_mutex_unlock(&rt->lock);
	return NULL;
}

static void *sup_main(void *arg)
{
	struct runtime *rt = arg;

	while (!stop_token_stopped(&rt->stopping)) {
		for (int i = 1; i < DRIVER_SLOTS; i++) {
			const struct driver_ops *ops = driver_find((Drover__Driver)i);
			if (ops != NULL && rt->dstate[i] != NULL && ops->tick != NULL)
				ops->tick(rt->dstate[i]);
		}
		poll(NULL, 0, TICK_MS);
	}
	return NULL;
}

/* --- the health gate --- */

/* Wait until the instance is healthy (or, without a check, stays up a
 * second), it crash-loops, or the deadline passes. */
/* A failed start or health gate says what the service printed last, so
 * that `drover status` shows why without `drover logs`. */
#define FAIL_OUTPUT_LINES 3
#define FAIL_OUTPUT_MAX   300

static int with_output(struct runtime *rt, const struct driver_instance *in, struct step_outcome *o)
{
	char tail[FAIL_OUTPUT_MAX + 1];
	size_t n = strlen(o->message);

	if (in->spec->driver == DROVER__DRIVER__DRIVER_SYSTEMD) {
		char unit[200];
		driver_systemd_unit(in->service, in->slot, unit, sizeof(unit));
		logjournal_tail_line(unit, FAIL_OUTPUT_LINES, tail, sizeof(tail));
	} else if (rt->cfg.log_dir != NULL) {
		logread_tail_line(rt->cfg.log_dir, in->name, FAIL_OUTPUT_LINES, tail, sizeof(tail));
	} else {
		return DRV_OK;
	}
	if (tail[0] != '\0' && n + 16 < sizeof(o->message))
		snprintf(o->message + n, sizeof(o->message) - n, "; last output: %s", tail);
	return DRV_OK;
}

/* The process a gate vouches for: the first one it sees running. A
 * passing check counts only while that process runs: a check answers
 * whatever listens on the port, and a process that exits (its port taken
 * by a process the agent does not run) and is restarted meanwhile must fail
 * the gate, not borrow another's health. */
struct gated {
	int pid;           /* 0 until seen running (drivers without pids: stays 0) */
	unsigned restarts; /* the driver's count when the gate began */
	bool seen_running;
};

/* Has the gated process exited (or been replaced) since the gate began? */
static bool gated_gone(struct gated *g, const struct driver_status *ds)
{
	if (ds->restarts != g->restarts)
		return true;
	if (g->pid != 0 && ds->pid != g->pid)
		return true;
	if (ds->state == DRIVER_RUNNING && !g->seen_running) {
		g->seen_running = true;
		g->pid = ds->pid;
	}
	return false;
}

static int gate(struct runtime *rt, const struct driver_instance *in, uint32_t step_deadline,
                int64_t *took_ms, struct step_outcome *o)
{
	const struct driver_ops *ops = ops_of(in->spec);
	struct health_params par;
	struct driver_status ds;
	int64_t t0 = drv_mono_ms(), limit;
	char detail[HEALTH_DETAIL_MAX] = "no check has run yet";
	bool checked = mon_has(rt, in->name), up;
	struct gated g = {0};

	health_params_of(in->spec->health, &par);
	limit = checked ? par.deadline_ms : NO_CHECK_WAIT_MS;
	if (checked && step_deadline > 0 && step_deadline < limit)
		limit = step_deadline;
	ops->status(dstate_of(rt, in->spec), in, &ds);
	g.restarts = ds.restarts;
	for (;;) {
		int64_t now = drv_mono_ms();
		ops->status(dstate_of(rt, in->spec), in, &ds);
		if (ds.state == DRIVER_FAILED) {
			step_fail(o, "%s failed to start: %s", in->name,
			          ds.detail[0] ? ds.detail : "not running");
			return with_output(rt, in, o);
		}
		if (gated_gone(&g, &ds)) {
			step_fail(o, "%s exited during its health gate (%s)%s%s", in->name,
			          ds.detail[0] ? ds.detail : "exit status unknown",
			          checked ? "; the last check was " : "", checked ? detail : "");
			return with_output(rt, in, o);
		}
		if (stop_token_stopped(rt->cfg.cancel))
			return step_fail(o, "%s: the agent is stopping; health not confirmed",
			                 in->name);
		up = checked && mon_state(rt, in->name, detail, sizeof(detail)) == HEALTH_UP;
		if (up && ds.state == DRIVER_RUNNING)
			break;
		if (now - t0 >= limit) {
			if (!checked && ds.state == DRIVER_RUNNING)
				break;
			if (!checked)
				step_fail(o, "%s is not running %lld ms after its start%s%s",
				          in->name, (long long)limit, ds.detail[0] ? ": " : "",
				          ds.detail);
			else
				step_fail(o, "%s not healthy within %lld ms (last check: %s)",
				          in->name, (long long)limit, detail);
			return with_output(rt, in, o);
		}
		if (!checked || up) /* up, but not (yet) its process: look again soon */
			poll(NULL, 0, GATE_POLL_MS);
		else
			mon_wait_up(rt, in->name, GATE_POLL_MS, detail, sizeof(detail));
	}
	*took_ms = drv_mono_ms() - t0;
	return DRV_OK;
}

/* --- actions --- */

static uint32_t grace_of(const Drover__ServiceSpec *s)
{
	return s && s->stop_grace_ms ? s->stop_grace_ms : DEFAULT_GRACE_MS;
}

static int stop_rel(struct runtime *rt, const struct state_release *r, enum state_role role)
{
	struct driver_instance in;
	const struct driver_ops *ops = ops_of(r->spec);
	char err[512] = "";
	int rc;

	rel_instance(r, &in);
	mon_stop(rt, in.name);
	rc = ops->stop(dstate_of(rt, r->spec), &in, grace_of(r->spec), err, sizeof(err));
	state_release_set_want(rt->st, r->service, role, false);
	if (rc != DRV_OK)
		drv_warn("runtime", "stop failed", "instance=%s error=\"%s\"", in.name, err);
	return rc;
}

static void gc(struct runtime *rt)
{
	char **sv = NULL, **dg = NULL;
	size_t n = 0;

	if (state_kept(rt->st, &sv, &dg, &n) == DRV_OK) {
		puller_gc(rt->puller, sv, dg, n);
		for (int i = 1; i < DRIVER_SLOTS; i++) {
			const struct driver_ops *ops = driver_find((Drover__Driver)i);
			if (ops != NULL && ops->gc != NULL && rt->dstate[i] != NULL)
				ops->gc(rt->dstate[i], dg, n);
		}
	}
	state_strings_free(sv, n);
	state_strings_free(dg, n);
}

static const char *short_digest(const char *d)
{
	static __thread char buf[24];
	snprintf(buf, sizeof(buf), "%.19s", d ? d : "");
	return buf;
}

int runtime_prestage(struct runtime *rt, const Drover__Instruction *ins, struct step_outcome *o)
{
	const Drover__ServiceSpec *s = ins->service;
	const struct driver_ops *ops = ops_of(s);
	struct driver_instance in;
	struct puller_stats ps = {0};
	char err[1024] = "", *dir = NULL;
	int64_t t0 = drv_mono_ms();
	int rc;

	if (ops == NULL)
		return step_fail(o, "unknown driver %d", (int)s->driver);
	spec_instance(s, "", &in);
	in.pull_stats = &ps;
	in.deadline_ms = pull_deadline(ins);
	rc = ops->prepare(dstate_of(rt, s), &in, false, &dir, err, sizeof(err));
	o->pulled_bytes = ps.bytes_fetched;
	o->cached_bytes = ps.bytes_cached;
	free(dir);
	if (rc != DRV_OK)
		return step_fail(o, "prestage of %s %s failed: %s", s->name, s->version,
		                 err[0] ? err : drv_strerror(rc));
	state_staged_add(rt->st, s->name, s->image->digest);
	return step_ok(o, "%s %s (%s) staged in %lld ms", s->name, s->version,
	               short_digest(s->image->digest), (long long)(drv_mono_ms() - t0));
}

static bool same_release(const struct state_release *cur, const Drover__ServiceSpec *s)
{
	size_t a = drover__service_spec__get_packed_size(cur->spec);
	size_t b = drover__service_spec__get_packed_size(s);
	uint8_t *x, *y;
	bool same = false;

	if (a != b)
		return false;
	x = malloc(a + 1);
	y = malloc(b + 1);
	if (x != NULL && y != NULL) {
		drover__service_spec__pack(cur->spec, x);
		drover__service_spec__pack(s, y);
		same = memcmp(x, y, a) == 0;
	}
	free(x);
	free(y);
	return same;
}

/* Make room for the new instance: drop a running old previous, stop the
 * current when it occupies the same instance (not blue-green). */
static void make_room(struct runtime *rt, const struct driver_instance *in, bool has_cur,
                      const struct state_release *cur, bool has_prev,
                      const struct state_release *prev, bool *cur_stopped)
{
	struct driver_instance ci, pi;
	struct driver_status ds;

	*cur_stopped = false;
	if (has_cur)
		rel_instance(cur, &ci);
	if (has_prev) {
		rel_instance(prev, &pi);
		if ((!has_cur || strcmp(pi.name, ci.name) != 0) &&
		    rel_status(rt, prev, &ds) != DRIVER_STOPPED)
			stop_rel(rt, prev, ROLE_PREVIOUS);
	}
	if (has_cur && strcmp(ci.name, in->name) == 0) {
		stop_rel(rt, cur, ROLE_CURRENT);
		*cur_stopped = true;
	}
}

/* Start in, the current release of its service now, and wait for its
 * health gate. */
static int start_gated(struct runtime *rt, const Drover__Instruction *ins,
                       const struct driver_instance *in, struct step_outcome *o)
{
	const Drover__ServiceSpec *s = ins->service;
	char err[1024] = "";
	int64_t took = 0;
	int rc = ops_of(s)->start(dstate_of(rt, s), in, err, sizeof(err));

	if (rc != DRV_OK) {
		state_release_set_want(rt->st, s->name, ROLE_CURRENT, false);
		return step_fail(o, "start of %s %s failed: %s", in->name, s->version,
		                 err[0] ? err : drv_strerror(rc));
	}
	mon_start(rt, in);
	rc = gate(rt, in, ins->step_deadline_ms, &took, o);
	if (rc == DRV_OK && !o->message[0])
		step_ok(o, "%s %s (%s) started, healthy after %lld ms", in->name, s->version,
		        short_digest(s->image->digest), (long long)took);
	return rc;
}

static int start_new(struct runtime *rt, const Drover__Instruction *ins, const char *dir,
                     struct step_outcome *o)
{
	const Drover__ServiceSpec *s = ins->service;
	struct driver_instance in;
	struct state_release cur = {0}, prev = {0};
	bool has_cur, has_prev, cur_stopped;
	int rc;

	spec_instance(s, dir, &in);
	has_cur = state_release_get(rt->st, s->name, ROLE_CURRENT, &cur) == DRV_OK;
	has_prev = state_release_get(rt->st, s->name, ROLE_PREVIOUS, &prev) == DRV_OK;
	make_room(rt, &in, has_cur, &cur, has_prev, &prev, &cur_stopped);
	struct state_release nr = {.service = s->name,
	                           .digest = s->image->digest,
	                           .version = s->version,
	                           .slot = (char *)in.slot,
	                           .root = (char *)dir,
	                           .port = s->port,
	                           .want_running = true,
	                           .spec = (Drover__ServiceSpec *)s};
	rc = state_release_shift(rt->st, &nr);
	if (rc == DRV_OK && has_cur && cur_stopped)
		state_release_set_want(rt->st, s->name, ROLE_PREVIOUS, false);
	state_release_clear(&cur);
	state_release_clear(&prev);
	if (rc != DRV_OK)
		return rc;
	return start_gated(rt, ins, &in, o);
}

/* A spec with what a reload may change cleared: files, version and the
 * DROVER_FLAG_* variables (a reloaded process keeps the values of its
 * start; the flags file has the new ones). NULL when out of memory. */
static uint8_t *config_free_bytes(const Drover__ServiceSpec *s, size_t *len)
{
	Drover__ServiceSpec c = *s;
	Drover__KeyValue **env = calloc(s->n_env + 1, sizeof(*env));
	uint8_t *buf = NULL;
	size_t n = 0;

	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < s->n_env; i++) {
		if (strncmp(s->env[i]->key, "DROVER_FLAG_", 12) != 0)
			env[n++] = s->env[i];
	}
	c.env = env;
	c.n_env = n;
	c.files = NULL;
	c.n_files = 0;
	c.version = (char *)"";
	*len = drover__service_spec__get_packed_size(&c);
	buf = malloc(*len + 1);
	if (buf != NULL)
		drover__service_spec__pack(&c, buf);
	free(env);
	return buf;
}

/* Does s differ from the running cur only in what a reload applies? */
static bool config_only(const struct state_release *cur, const Drover__ServiceSpec *s)
{
	size_t a = 0, b = 0;
	uint8_t *x, *y;
	bool same;

	if (!s->reload_on_config || ops_of(s)->reload == NULL || cur->spec == NULL ||
	    strcmp(cur->digest, s->image->digest) != 0)
		return false;
	x = config_free_bytes(cur->spec, &a);
	y = config_free_bytes(s, &b);
	same = x != NULL && y != NULL && a == b && memcmp(x, y, a) == 0;
	free(x);
	free(y);
	return same;
}

/* on_config: reload: the new release is the running process with new
 * files and a SIGHUP; the previous release (same instance) is kept for a
 * rollback, which restarts it with its own files. Health-gated afresh: the
 * monitor starts over, so a config that breaks the service fails the gate. */
static int reload_config(struct runtime *rt, const Drover__Instruction *ins,
                         const struct state_release *cur, struct step_outcome *o)
{
	const Drover__ServiceSpec *s = ins->service;
	struct driver_instance in;
	char err[1024] = "";
	int64_t took = 0;
	int rc;

	spec_instance(s, cur->root, &in);
	struct state_release nr = {.service = s->name,
	                           .digest = s->image->digest,
	                           .version = s->version,
	                           .slot = (char *)in.slot,
	                           .root = cur->root,
	                           .port = s->port,
	                           .want_running = true,
	                           .spec = (Drover__ServiceSpec *)s};
	rc = state_release_shift(rt->st, &nr);
	if (rc == DRV_OK)
		rc = state_release_set_want(rt->st, s->name, ROLE_PREVIOUS, false);
	if (rc != DRV_OK)
		return rc;
	mon_stop(rt, in.name);
	rc = ops_of(s)->reload(dstate_of(rt, s), &in, err, sizeof(err));
	if (rc != DRV_OK)
		return step_fail(o, "reload of %s %s failed: %s", in.name, s->version,
		                 err[0] ? err : drv_strerror(rc));
	mon_start(rt, &in);
	rc = gate(rt, &in, ins->step_deadline_ms, &took, o);
	if (rc == DRV_OK && !o->message[0])
		step_ok(o,
		        "%s %s: configuration reloaded (SIGHUP, no restart), healthy after %lld ms",
		        in.name, s->version, (long long)took);
	return rc;
}

int runtime_start(struct runtime *rt, const Drover__Instruction *ins, struct step_outcome *o)
{
	const Drover__ServiceSpec *s = ins->service;
	const struct driver_ops *ops = ops_of(s);
	struct state_release cur;
	struct driver_instance in;
	struct driver_status ds;
	struct puller_stats ps = {0};
	char err[1024] = "", *dir = NULL;
	int64_t took = 0;
	int rc;

	if (ops == NULL)
		return step_fail(o, "unknown driver %d", (int)s->driver);
	spec_instance(s, "", &in);
	in.pull_stats = &ps;
	in.deadline_ms = pull_deadline(ins);
	rc = ops->prepare(dstate_of(rt, s), &in, false, &dir, err, sizeof(err));
	o->pulled_bytes = ps.bytes_fetched;
	o->cached_bytes = ps.bytes_cached;
	if (rc != DRV_OK)
		return step_fail(o, "cannot get %s %s ready: %s", s->name, s->version,
		                 err[0] ? err : drv_strerror(rc));
	if (state_release_get(rt->st, s->name, ROLE_CURRENT, &cur) == DRV_OK) {
		bool same = same_release(&cur, s);
		bool running = rel_status(rt, &cur, &ds) == DRIVER_RUNNING;

		if (running && !same && config_only(&cur, s)) {
			rc = reload_config(rt, ins, &cur, o);
			state_release_clear(&cur);
			free(dir);
			return rc;
		}
		state_release_clear(&cur);
		if (same && !running) {
			/* this START again (resumed after an agent restart): its
			 * release is current already; a second shift would make
			 * it its own previous and lose the real one */
			spec_instance(s, dir, &in);
			state_release_set_want(rt->st, s->name, ROLE_CURRENT, true);
			rc = start_gated(rt, ins, &in, o);
			free(dir);
			return rc;
		}
		if (same) {
			spec_instance(s, dir, &in);
			if (!mon_has(rt, in.name))
				mon_start(rt, &in);
			rc = gate(rt, &in, ins->step_deadline_ms, &took, o);
			if (rc == DRV_OK && !o->message[0])
				step_ok(o, "%s %s is already running and healthy", in.name,
				        s->version);
			free(dir);
			return rc;
		}
	}
	rc = start_new(rt, ins, dir, o);
	free(dir);
	if (rc == DRV_OK && o->ok)
		gc(rt);
	return rc;
}

/* STOP naming a blue-green slot (the rollback of a switch that did not
 * finish): only that slot stops. When it was the current release and the
 * previous one still runs in the other slot, the previous one is current
 * again (what runs is what the agent records and reports). */
static int stop_slot(struct runtime *rt, const char *name, const char *slot, struct step_outcome *o)
{
	struct state_release cur = {0}, prev = {0};
	struct driver_instance pi;
	struct driver_status ds;
	bool has_cur = state_release_get(rt->st, name, ROLE_CURRENT, &cur) == DRV_OK;
	bool has_prev = state_release_get(rt->st, name, ROLE_PREVIOUS, &prev) == DRV_OK;
	int rc = DRV_OK;

	if (has_cur && strcmp(cur.slot, slot) == 0) {
		stop_rel(rt, &cur, ROLE_CURRENT);
		if (has_prev && strcmp(prev.slot, slot) != 0 &&
		    rel_status(rt, &prev, &ds) == DRIVER_RUNNING) {
			rc = state_release_swap(rt->st, name);
			if (rc == DRV_OK)
				rc = state_release_set_want(rt->st, name, ROLE_CURRENT, true);
			rel_instance(&prev, &pi);
			if (rc == DRV_OK && !mon_has(rt, pi.name))
				mon_start(rt, &pi);
			if (rc == DRV_OK)
				step_ok(o, "%s@%s stopped; %s@%s (%s) is current again", name, slot,
				        name, prev.slot, prev.version);
			else
				step_fail(o,
				          "%s@%s stopped, but cannot record %s@%s as current: %s",
				          name, slot, name, prev.slot, drv_strerror(rc));
		} else {
			step_ok(o, "%s@%s stopped", name, slot);
		}
	} else if (has_prev && strcmp(prev.slot, slot) == 0 &&
	           rel_status(rt, &prev, &ds) != DRIVER_STOPPED) {
		stop_rel(rt, &prev, ROLE_PREVIOUS);
		step_ok(o, "%s@%s stopped", name, slot);
	} else {
		step_ok(o, "%s@%s was not running", name, slot);
	}
	state_release_clear(&cur);
	state_release_clear(&prev);
	return rc;
}

int runtime_stop(struct runtime *rt, const Drover__Instruction *ins, struct step_outcome *o)
{
	const char *name = ins->service->name;
	struct state_release cur, prev;
	struct driver_status ds;
	int n = 0;

	if (ins->service->slot != NULL && ins->service->slot[0] != '\0')
		return stop_slot(rt, name, ins->service->slot, o);

	if (state_release_get(rt->st, name, ROLE_CURRENT, &cur) == DRV_OK) {
		stop_rel(rt, &cur, ROLE_CURRENT);
		state_release_clear(&cur);
		n++;
	}
	if (state_release_get(rt->st, name, ROLE_PREVIOUS, &prev) == DRV_OK) {
		if (rel_status(rt, &prev, &ds) != DRIVER_STOPPED) {
			stop_rel(rt, &prev, ROLE_PREVIOUS);
			n++;
		}
		state_release_clear(&prev);
	}
	return step_ok(o, n ? "%s stopped" : "%s was not running", name);
}

int runtime_activate_previous(struct runtime *rt, const Drover__Instruction *ins,
                              struct step_outcome *o)
{
	const char *name = ins->service->name;
	struct state_release cur = {0}, prev = {0};
	struct driver_instance pi, ci;
	struct driver_status ds;
	char err[1024] = "", *dir = NULL;
	bool has_cur, prev_running;
	int64_t took = 0;
	int rc;

	has_cur = state_release_get(rt->st, name, ROLE_CURRENT, &cur) == DRV_OK;
	if (state_release_get(rt->st, name, ROLE_PREVIOUS, &prev) != DRV_OK) {
		state_release_clear(&cur);
		return step_fail(o, "%s has no previous release on this host to go back to", name);
	}
	rel_instance(&prev, &pi);
	rc = ops_of(prev.spec)->prepare(dstate_of(rt, prev.spec), &pi, true, &dir, err,
	                                sizeof(err));
	free(dir);
	if (rc != DRV_OK) {
		step_fail(o, "cannot go back to %s %s: %s", name, prev.version, err);
		goto out;
	}
	if (has_cur) {
		rel_instance(&cur, &ci);
		prev_running = strcmp(ci.name, pi.name) != 0 &&
		               rel_status(rt, &prev, &ds) == DRIVER_RUNNING;
		stop_rel(rt, &cur, ROLE_CURRENT);
	} else {
		prev_running = rel_status(rt, &prev, &ds) == DRIVER_RUNNING;
	}
	rc = state_release_swap(rt->st, name);
	if (rc == DRV_OK)
		rc = state_release_set_want(rt->st, name, ROLE_CURRENT, true);
	if (rc != DRV_OK)
		goto out;
	if (!prev_running)
		rc = ops_of(prev.spec)->start(dstate_of(rt, prev.spec), &pi, err, sizeof(err));
	if (rc != DRV_OK) {
		state_release_set_want(rt->st, name, ROLE_CURRENT, false);
		rc = step_fail(o, "restart of %s %s failed: %s", pi.name, prev.version, err);
		goto out;
	}
	if (!mon_has(rt, pi.name) || !prev_running)
		mon_start(rt, &pi);
	rc = gate(rt, &pi, ins->step_deadline_ms, &took, o);
	if (rc == DRV_OK && !o->message[0])
		step_ok(o, "%s rolled back to %s (%s)%s, healthy after %lld ms", name, prev.version,
		        short_digest(prev.digest), prev_running ? ", which was still running" : "",
		        (long long)took);
out:
	state_release_clear(&cur);
	state_release_clear(&prev);
	return rc;
}

int runtime_finalize(struct runtime *rt, const Drover__Instruction *ins, struct step_outcome *o)
{
	const char *name = ins->service->name;
	struct state_release cur = {0}, prev = {0};
	struct driver_instance ci, pi;
	struct driver_status ds;
	bool stopped = false;

	if (state_release_get(rt->st, name, ROLE_CURRENT, &cur) != DRV_OK)
		return step_fail(o, "%s has no current release to finalize", name);
	if (state_release_get(rt->st, name, ROLE_PREVIOUS, &prev) == DRV_OK) {
		rel_instance(&cur, &ci);
		rel_instance(&prev, &pi);
		if (strcmp(ci.name, pi.name) != 0 && rel_status(rt, &prev, &ds) != DRIVER_STOPPED) {
			stop_rel(rt, &prev, ROLE_PREVIOUS);
			stopped = true;
		}
	}
	step_ok(o,
	        stopped ? "%s finalized: old slot %s (%s) stopped, kept for rollback"
	                : "%s finalized: no old slot was running%s%s",
	        name, stopped ? prev.slot : "", stopped ? prev.version : "");
	state_release_clear(&cur);
	state_release_clear(&prev);
	gc(rt);
	return DRV_OK;
}

int runtime_health_check(struct runtime *rt, const Drover__Instruction *ins, struct step_outcome *o)
{
	const Drover__ServiceSpec *s = ins->service;
	const Drover__HealthCheck *hc = s->health;
	const struct health_kind_ops *kind;
	struct state_release cur = {0};
	struct health_params par;
	char detail[HEALTH_DETAIL_MAX] = "", cwd[4200] = "";
	bool has_cur = state_release_get(rt->st, s->name, ROLE_CURRENT, &cur) == DRV_OK, ok;

	(void)rt;
	if ((hc == NULL || hc->kind == DROVER__HEALTH_KIND__HEALTH_NONE) && has_cur)
		hc = cur.spec->health;
	kind = hc ? health_kind_find(hc->kind) : NULL;
	if (kind == NULL) {
		state_release_clear(&cur);
		return step_fail(o, "%s has no health check to run", s->name);
	}
	health_params_of(hc, &par);
	if (has_cur)
		snprintf(cwd, sizeof(cwd), "%s/rootfs", cur.root);
	struct privs pv;
	char pv_err[200] = "";
	bool pv_ok = health_privs(has_cur ? cur.spec : s, &pv, pv_err, sizeof(pv_err));
	struct health_target t = {.host = hc->host,
	                          .port = hc->port ? hc->port : (s->port ? s->port : cur.port),
	                          .cwd = cwd[0] ? cwd : NULL,
	                          .privs = pv_ok ? &pv : NULL,
	                          .privs_err = pv_err};
	ok = kind->probe(hc, &t, par.timeout_ms, detail, sizeof(detail));
	state_release_clear(&cur);
	return ok ? step_ok(o, "%s healthy: %s", s->name, detail)
	          : step_fail(o, "%s unhealthy: %s", s->name, detail);
}

/* --- releases --- */

static Drover__ReleaseState to_release_state(enum driver_state s, bool want)
{
	switch (s) {
	case DRIVER_RUNNING: return DROVER__RELEASE_STATE__RELEASE_RUNNING;
	case DRIVER_STOPPED:
		return want ? DROVER__RELEASE_STATE__RELEASE_FAILED
		            : DROVER__RELEASE_STATE__RELEASE_STOPPED;
	default: return DROVER__RELEASE_STATE__RELEASE_FAILED;
	}
}

/* The release's files as they are on disk now (drift: a config file edited
 * by hand), the same digest the coordinator makes from the plan. */
static char *files_hash_of(const struct state_release *r)
{
	size_t n = r->spec != NULL ? r->spec->n_files : 0;
	struct drv_file_ref *f = calloc(n ? n : 1, sizeof(*f));
	char digest[DRV_DIGEST_STR] = "", path[4400];

	for (size_t i = 0; f != NULL && i < n; i++) {
		char *data = NULL;
		size_t len = 0;

		snprintf(path, sizeof(path), "%s/rootfs%s", r->root, r->spec->files[i]->path);
		f[i].path = r->spec->files[i]->path;
		if (drv_read_file(path, 1u << 20, &data, &len) == DRV_OK) {
			f[i].content = (const uint8_t *)data;
			f[i].len = len;
		}
	}
	if (f != NULL)
		drv_files_hash(f, n, digest);
	for (size_t i = 0; f != NULL && i < n; i++)
		free((void *)f[i].content);
	free(f);
	return strdup(digest);
}

static Drover__Release *make_release(struct runtime *rt, const struct state_release *r,
                                     const struct state_release *prev)
{
	Drover__Release *x = malloc(sizeof(*x));
	struct driver_instance in;
	struct driver_status ds;

	if (x == NULL)
		return NULL;
	drover__release__init(x);
	rel_instance(r, &in);
	rel_status(rt, r, &ds);
	x->state = to_release_state(ds.state, r->want_running);
	x->healthy = ds.state == DRIVER_RUNNING &&
	             (mon_has(rt, in.name) ? mon_state(rt, in.name, NULL, 0) == HEALTH_UP : true);
	x->port = r->port;
	x->alive_since_ms = ds.state == DRIVER_RUNNING ? ds.alive_since_ms : 0;
	x->restarts = ds.restarts;
	x->service = strdup(r->service);
	x->version = strdup(r->version);
	x->digest = strdup(r->digest);
	x->slot = strdup(r->slot);
	x->previous_version = strdup(prev ? prev->version : "");
	x->previous_digest = strdup(prev ? prev->digest : "");
	x->files_hash = files_hash_of(r);
	if (!x->service || !x->version || !x->digest || !x->slot || !x->previous_version ||
	    !x->previous_digest || !x->files_hash) {
		drover__release__free_unpacked(x, NULL);
		return NULL;
	}
	return x;
}

int runtime_releases(struct runtime *rt, Drover__Release ***out, size_t *n_out)
{
	struct state_release *rels = NULL;
	enum state_role *roles = NULL;
	Drover__Release **arr;
	size_t n = 0, m = 0;
	int rc = state_release_list(rt->st, &rels, &roles, &n);

	if (rc != DRV_OK)
		return rc;
	arr = calloc(n + 1, sizeof(*arr));
	for (size_t i = 0; arr != NULL && i < n; i++) {
		const struct state_release *prev = NULL;
		struct driver_instance a, b;
		struct driver_status ds;
		if (roles[i] == ROLE_CURRENT) {
			if (i + 1 < n && roles[i + 1] == ROLE_PREVIOUS &&
			    strcmp(rels[i + 1].service, rels[i].service) == 0)
				prev = &rels[i + 1];
			arr[m] = make_release(rt, &rels[i], prev);
			m += arr[m] != NULL;
			continue;
		}
		/* A previous release still running in another slot is reported too. */
		rel_instance(&rels[i], &a);
		bool other_slot = i == 0 || roles[i - 1] != ROLE_CURRENT ||
		                  strcmp(rels[i - 1].service, rels[i].service) != 0;
		if (!other_slot) {
			rel_instance(&rels[i - 1], &b);
			other_slot = strcmp(a.name, b.name) != 0;
		}
		if (other_slot && rel_status(rt, &rels[i], &ds) == DRIVER_RUNNING) {
			arr[m] = make_release(rt, &rels[i], NULL);
			m += arr[m] != NULL;
		}
	}
	state_releases_free(rels, roles, n);
	if (arr == NULL)
		return DRV_ENOMEM;
	*out = arr;
	*n_out = m;
	return DRV_OK;
}

/* --- life cycle --- */

static void adopt_all(struct runtime *rt)
{
	struct state_release *rels = NULL;
	enum state_role *roles = NULL;
	size_t n = 0;

	if (state_release_list(rt->st, &rels, &roles, &n) != DRV_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		struct driver_instance in;
		const struct driver_ops *ops = ops_of(rels[i].spec);
		char err[512] = "";
		if (!rels[i].want_running || ops == NULL)
			continue;
		rel_instance(&rels[i], &in);
		if (ops->adopt(dstate_of(rt, rels[i].spec), &in, err, sizeof(err)) != DRV_OK)
			drv_error("runtime", "cannot take over a service",
			          "instance=%s error=\"%s\"", in.name, err);
		mon_start(rt, &in);
	}
	state_releases_free(rels, roles, n);
}

int runtime_new(const struct runtime_config *cfg, struct state *st, struct runtime **out)
{
	struct runtime *rt = calloc(1, sizeof(*rt));
	struct puller_config pc = {.cache_dir = cfg->cache_dir,
	                           .releases_dir = cfg->releases_dir,
	                           .insecure = cfg->insecure_registry,
	                           .stall_s = cfg->pull_stall_s,
	                           .fetch_exe = cfg->fetch_exe,
	                           .cancel = cfg->cancel};
	int rc;

	if (rt == NULL)
		return DRV_ENOMEM;
	rt->cfg = *cfg;
	rt->st = st;
	pthread_mutex_init(&rt->lock, NULL);
	pthread_cond_init(&rt->cond, NULL);
	rc = puller_new(&pc, &rt->puller);
	struct driver_env env = {.state_dir = cfg->state_dir,
	                         .log_dir = cfg->log_dir,
	                         .docker_socket = cfg->docker_socket,
	                         .puller = rt->puller,
	                         .log_max_bytes = cfg->log_max_bytes,
	                         .log_keep = cfg->log_keep,
	                         .cancel = cfg->cancel,
	                         .notice = notice,
	                         .notice_arg = rt};
	for (int i = 1; rc == DRV_OK && i < DRIVER_SLOTS; i++)
		rc = driver_find((Drover__Driver)i)->init(&env, &rt->dstate[i]);
	if (rc == DRV_OK) {
		adopt_all(rt);
		if (pthread_create(&rt->sup_thread, NULL, sup_main, rt) != 0 ||
		    pthread_create(&rt->health_thread, NULL, health_main, rt) != 0)
			rc = DRV_ESYS; /* (a started thread is left to runtime_free) */
		else
			rt->threads = true;
	}
	if (rc != DRV_OK) {
		runtime_free(rt);
		return rc;
	}
	*out = rt;
	return DRV_OK;
}

void runtime_free(struct runtime *rt)
{
	struct mon *m, *next;

	if (rt == NULL)
		return;
	pthread_mutex_lock(&rt->lock);
	stop_token_set(&rt->stopping);
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->lock);
	if (rt->threads) {
		pthread_join(rt->sup_thread, NULL);
		pthread_join(rt->health_thread, NULL);
	}
	for (int i = 1; i < DRIVER_SLOTS; i++)
		if (rt->dstate[i] != NULL)
			driver_find((Drover__Driver)i)->fini(rt->dstate[i]);
	for (m = rt->mons; m != NULL; m = next) {
		next = m->next;
		mon_free(m);
	}
	puller_free(rt->puller);
	pthread_cond_destroy(&rt->cond);
	pthread_mutex_destroy(&rt->lock);
	free(rt);
}
