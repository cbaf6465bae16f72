/*
 * executor.c: the agent's instruction executor: a persistent step log for
 * idempotency, a queue, worker threads that serialize steps per service, and
 * the dispatch of each action to its handler (hooks here, service actions in
 * runtime.c).
 */
#include "executor.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "clock.h"
#include "err.h"
#include "hook.h"
#include "driver.h"
#include "logjournal.h"
#include "logread.h"
#include "log.h"
#include "runtime.h"
#include "state.h"
#include "step.h"
#include "stop_token.h"

#define N_WORKERS    4
#define STEPS_KEEP   2000
#define STEPS_AGE    (14LL * 24 * 3600 * 1000)
#define PRUNE_EVERY  100   /* finished steps between two prunes of agent.db */
#define IDLE_EXIT_MS 30000 /* worker_idle_ms */
#define INTERRUPTED  "interrupted: the agent stopped while this step was queued or running"

struct job {
	struct job *next;
	Drover__Instruction *ins; /* deep copy, owned */
	char key[80];             /* steps with the same key run in order */
	executor_report_fn report;
	void *arg;
	int64_t t0; /* monotonic, when accepted */
};

/*
 * Workers are started when a job finds none idle, up to N_WORKERS, and the
 * one idle longest ends after worker_idle_ms (all but the last). An idle
 * worker waits on its own condition variable and the most recently idle
 * one gets the next job: steps that come one after another all run on the
 * same thread, so one stack is warm instead of four (each step touched
 * another 20-24 KiB of stack on a thread that had not run one yet).
 */
enum worker_state { W_NONE, W_LIVE, W_ENDED };

struct worker {
	pthread_t thr;
	pthread_cond_t wake;
	enum worker_state state;
	char key[80]; /* the key of the job it runs; "" when not running one */
	bool coming;  /* will call take_job() before it waits: new, woken, or
	               * about to finish a job (counted in n_coming) */
	struct executor *ex;
};

struct executor {
	char *state_dir, *cache_dir, *releases_dir, *log_dir, *docker_socket, *agent_id;
	executor_report_fn events;
	void *events_arg;
	struct state *st;
	struct runtime *rt;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a job finished (executor_drain) */
	struct job *head, *tail;
	int active; /* jobs queued or running */
	struct stop_token stopping;
	struct worker workers[N_WORKERS];
	size_t idle[N_WORKERS]; /* idle workers, the most recently idle last */
	size_t n_idle, n_live;
	size_t n_coming;      /* workers with .coming set */
	bool started;         /* executor_new has queued the recovered steps */
	atomic_uint finished; /* steps finished, for PRUNE_EVERY */
	int64_t idle_exit_ms, steps_age_ms;
	int steps_keep;
};

static const char *action_name(int a)
{
	static const char *const names[] = {"unspecified", "prestage",          "start",
	                                    "stop",        "activate-previous", "health-check",
	                                    "run-hook",    "finalize",          "read-log"};
	return a >= 0 && a < (int)(sizeof(names) / sizeof(names[0])) ? names[a] : "unknown";
}

static bool is_service_action(int a)
{
	return a == DROVER__ACTION__ACTION_PRESTAGE || a == DROVER__ACTION__ACTION_START ||
	       a == DROVER__ACTION__ACTION_STOP || a == DROVER__ACTION__ACTION_ACTIVATE_PREVIOUS ||
	       a == DROVER__ACTION__ACTION_HEALTH_CHECK || a == DROVER__ACTION__ACTION_FINALIZE;
}

static const char *ins_service(const Drover__Instruction *ins)
{
	if (ins->service != NULL && ins->service->name != NULL)
		return ins->service->name;
	if (ins->log != NULL && ins->log->service != NULL)
		return ins->log->service;
	return "";
}

/* --- reports --- */

static void fill_report(struct executor *ex, Drover__Report *r, const char *deployment,
                        const char *step_id, uint64_t seq, const char *service,
                        Drover__StepResult result)
{
	drover__report__init(r);
	r->agent_id = ex->agent_id;
	r->deployment_id = (char *)deployment;
	r->step_id = (char *)step_id;
	r->instruction_seq = seq;
	r->service = (char *)service;
	r->result = result;
	r->sent_at_ms = drv_wall_ms();
}

/* Attach the releases of one service (for final reports of service steps). */
static void attach_releases(struct executor *ex, Drover__Report *r, const char *service,
                            Drover__Release ***keep, size_t *nkeep)
{
	Drover__Release **all = NULL;
	size_t n = 0, m = 0;

	*keep = NULL;
	*nkeep = 0;
	if (service[0] == '\0' || runtime_releases(ex->rt, &all, &n) != DRV_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(all[i]->service, service) == 0)
			all[m++] = all[i];
		else
			drover__release__free_unpacked(all[i], NULL);
	}
	r->releases = all;
	r->n_releases = m;
	*keep = all;
	*nkeep = m;
}

static void report_simple(struct executor *ex, const Drover__Instruction *ins,
                          Drover__StepResult result, const char *msg, executor_report_fn fn,
                          void *arg)
{
	Drover__Report r;

	fill_report(ex, &r, ins->deployment_id, ins->step_id, ins->seq, (char *)ins_service(ins),
	            result);
	r.message = (char *)msg;
	fn(&r, arg);
}

static void report_recorded(struct executor *ex, const struct state_step *s, executor_report_fn fn,
                            void *arg)
{
	Drover__Release **rel;
	Drover__Report r;
	size_t n;

	fill_report(ex, &r, s->deployment, s->step_id, s->seq, s->service,
	            s->status == STEP_OK ? DROVER__STEP_RESULT__STEP_SUCCEEDED
	                                 : DROVER__STEP_RESULT__STEP_FAILED);
	r.message = s->message;
	r.exit_code = s->exit_code;
	r.output_tail = s->output_tail;
	r.duration_ms = (uint64_t)(s->duration_ms > 0 ? s->duration_ms : 0);
	attach_releases(ex, &r, s->service, &rel, &n);
	fn(&r, arg);
	executor_releases_free(rel, n);
}

/* A step the agent may run again after it stopped in the middle: a
 * service step that is safe to repeat, while the coordinator still waits
 * for it (its deadline from when it was issued, else its expiry). */
static bool resumable(const Drover__Instruction *ins)
{
	int64_t until = ins->step_deadline_ms > 0
	                        ? ins->issued_at_ms + (int64_t)ins->step_deadline_ms
	                        : ins->expires_at_ms;

	if (!is_service_action(ins->action) ||
	    ins->action == DROVER__ACTION__ACTION_ACTIVATE_PREVIOUS || ins->service == NULL)
		return false;
	return drv_wall_ms() < until;
}

/* --- the queue --- */

static bool key_busy(struct executor *ex, const char *key)
{
	for (size_t i = 0; i < N_WORKERS; i++) {
		if (strcmp(ex->workers[i].key, key) == 0)
			return true;
	}
	return false;
}

/* Take the first job whose key is not being worked on. Called locked. */
static struct job *take_job(struct executor *ex)
{
	struct job *prev = NULL;

	for (struct job *j = ex->head; j != NULL; prev = j, j = j->next) {
		if (key_busy(ex, j->key))
			continue;
		if (prev == NULL)
			ex->head = j->next;
		else
			prev->next = j->next;
		if (ex->tail == j)
			ex->tail = prev;
		j->next = NULL;
		return j;
	}
	return NULL;
}

/* How many workers the queue could keep busy now (jobs take_job() would
 * return, one per key), counted up to N_WORKERS. Called locked. */
static size_t runnable(struct executor *ex)
{
	const char *keys[N_WORKERS];
	size_t n = 0, k;

	for (struct job *j = ex->head; j != NULL && n < N_WORKERS; j = j->next) {
		for (k = 0; k < n && strcmp(keys[k], j->key) != 0; k++)
			;
		if (k == n && !key_busy(ex, j->key))
			keys[n++] = j->key;
	}
	return n;
}

static void job_free(struct job *j)
{
	if (j == NULL)
		return;
	if (j->ins != NULL)
		drover__instruction__free_unpacked(j->ins, NULL);
	free(j);
}

static int dispatch(struct executor *ex, const Drover__Instruction *ins, struct step_outcome *o)
{
	switch (ins->action) {
	case DROVER__ACTION__ACTION_RUN_HOOK:
		return hook_run(ins, ex->state_dir, ex->log_dir, &ex->stopping, o);
	case DROVER__ACTION__ACTION_PRESTAGE: return runtime_prestage(ex->rt, ins, o);
	case DROVER__ACTION__ACTION_START: return runtime_start(ex->rt, ins, o);
	case DROVER__ACTION__ACTION_STOP: return runtime_stop(ex->rt, ins, o);
	case DROVER__ACTION__ACTION_ACTIVATE_PREVIOUS:
		return runtime_activate_previous(ex->rt, ins, o);
	case DROVER__ACTION__ACTION_HEALTH_CHECK: return runtime_health_check(ex->rt, ins, o);
	case DROVER__ACTION__ACTION_FINALIZE: return runtime_finalize(ex->rt, ins, o);
	default: return step_fail(o, "unknown action %d", (int)ins->action);
	}
}

/* The journal unit of rq's service when the systemd driver runs its
 * current release (the slot asked, else the current release's); false:
 * the service logs to LOG_DIR. */
static bool journal_unit(struct executor *ex, const Drover__LogRequest *rq, char *unit, size_t size)
{
	struct state_release cur;
	bool sd;

	if (state_release_get(ex->st, rq->service, ROLE_CURRENT, &cur) != DRV_OK)
		return false;
	sd = cur.spec != NULL && cur.spec->driver == DROVER__DRIVER__DRIVER_SYSTEMD;
	if (sd)
		driver_systemd_unit(rq->service, rq->slot[0] != '\0' ? rq->slot : cur.slot, unit,
		                    size);
	state_release_clear(&cur);
	return sd;
}

/* ACTION_READ_LOG: the answer goes in the report's log chunk; the text is
 * not kept in the agent's state (logs may hold secrets). */
static void read_log(struct executor *ex, const Drover__Instruction *ins, struct step_outcome *o,
                     struct logread *lr)
{
	char why[300] = "", unit[200];
	int rc;

	if (journal_unit(ex, ins->log, unit, sizeof(unit)))
		rc = logjournal_read(unit, ins->log, lr, why, sizeof(why));
	else
		rc = logread_read(ex->log_dir, ins->log, lr, why, sizeof(why));
	if (rc != DRV_OK)
		step_fail(o, "%s", why);
	else
		step_ok(o, "%zu bytes of %s", lr->len, lr->instance);
}

static void set_coming(struct executor *ex, struct worker *w)
{
	if (!w->coming)
		ex->n_coming++;
	w->coming = true;
}

/* Called before the final report: the worker looks for the next job at
 * once, so the next step (often sent on this report) needs no other. */
static void will_look(struct executor *ex, struct worker *w)
{
	pthread_mutex_lock(&ex->lock);
	set_coming(ex, w);
	pthread_mutex_unlock(&ex->lock);
}

static void run_job(struct executor *ex, struct worker *w, struct job *j)
{
	const Drover__Instruction *ins = j->ins;
	struct step_outcome *o = calloc(1, sizeof(*o));
	Drover__LogChunk chunk = DROVER__LOG_CHUNK__INIT;
	struct logread lr = {0};
	Drover__Release **rel = NULL;
	Drover__Report r;
	size_t nrel = 0;
	int64_t dur;
	int rc;

	if (o == NULL) {
		drv_error("executor", "out of memory running step", "step=%s", ins->step_id);
		return;
	}
	state_step_start(ex->st, ins->step_id);
	drv_info("executor", "step started", "step=%s action=%s service=%s", ins->step_id,
	         action_name(ins->action), ins_service(ins));
	if (ins->action == DROVER__ACTION__ACTION_READ_LOG) {
		read_log(ex, ins, o, &lr);
		rc = DRV_OK;
	} else {
		rc = dispatch(ex, ins, o);
	}
	if (rc != DRV_OK)
		step_fail(o, "%s: %s", action_name(ins->action), drv_strerror(rc));
	if (!o->ok && stop_token_stopped(&ex->stopping) && resumable(ins)) {
		/* cut short by the stop, not failed: left running in the state,
		 * it runs again when the agent starts (recover_steps) */
		drv_warn("executor",
		         "step cut short by the agent stopping; it resumes at the next start",
		         "step=%s action=%s service=%s msg=\"%s\"", ins->step_id,
		         action_name(ins->action), ins_service(ins), o->message);
		free(lr.text);
		free(o);
		return;
	}
	dur = drv_mono_ms() - j->t0;
	if (state_step_finish(ex->st, ins->step_id, o->ok, o->message, o->exit_code, o->tail,
	                      dur) != DRV_OK)
		drv_error("executor", "cannot record step result", "step=%s", ins->step_id);
	drv_info("executor", o->ok ? "step succeeded" : "step failed",
	         "step=%s action=%s service=%s duration_ms=%lld msg=\"%s\"", ins->step_id,
	         action_name(ins->action), ins_service(ins), (long long)dur, o->message);
	fill_report(ex, &r, ins->deployment_id, ins->step_id, ins->seq, (char *)ins_service(ins),
	            o->ok ? DROVER__STEP_RESULT__STEP_SUCCEEDED : DROVER__STEP_RESULT__STEP_FAILED);
	r.message = o->message;
	r.exit_code = o->exit_code;
	r.output_tail = o->tail;
	r.duration_ms = (uint64_t)dur;
	r.pulled_bytes = o->pulled_bytes;
	r.cached_bytes = o->cached_bytes;
	if (lr.text != NULL || (ins->action == DROVER__ACTION__ACTION_READ_LOG && o->ok)) {
		chunk.text.data = (uint8_t *)lr.text;
		chunk.text.len = lr.len;
		chunk.offset = lr.offset;
		chunk.truncated = lr.truncated;
		chunk.rotated = lr.rotated;
		chunk.instance = lr.instance;
		r.log = &chunk;
	} else {
		attach_releases(ex, &r, ins_service(ins), &rel, &nrel);
	}
	will_look(ex, w);
	j->report(&r, j->arg);
	free(lr.text);
	executor_releases_free(rel, nrel);
	free(o);
}

static void provide(struct executor *ex);

static void idle_remove(struct executor *ex, size_t id)
{
	for (size_t i = 0; i < ex->n_idle; i++) {
		if (ex->idle[i] == id) {
			memmove(&ex->idle[i], &ex->idle[i + 1],
			        (ex->n_idle - i - 1) * sizeof(ex->idle[0]));
			ex->n_idle--;
			return;
		}
	}
}

static bool is_idle(const struct executor *ex, size_t id)
{
	for (size_t i = 0; i < ex->n_idle; i++) {
		if (ex->idle[i] == id)
			return true;
	}
	return false;
}

/* Wait, idle, until provide() picks this worker or the executor stops.
 * False: the worker was idle for worker_idle_ms and is not the last one, it
 * ends. Called locked. */
static bool wait_idle(struct executor *ex, struct worker *w)
{
	size_t id = (size_t)(w - ex->workers);
	struct timespec until = drv_mono_timespec_in(ex->idle_exit_ms);

	ex->idle[ex->n_idle++] = id;
	while (is_idle(ex, id) && !stop_token_stopped(&ex->stopping)) {
		if (ex->n_live <= 1) {
			pthread_cond_wait(&w->wake, &ex->lock);
			until = drv_mono_timespec_in(ex->idle_exit_ms);
		} else if (pthread_cond_timedwait(&w->wake, &ex->lock, &until) == ETIMEDOUT &&
		           is_idle(ex, id) && ex->n_live > 1) {
			idle_remove(ex, id);
			return false;
		}
	}
	idle_remove(ex, id); /* stopping: no provide() took it off */
	return true;
}

static void *worker(void *arg)
{
	struct worker *w = arg;
	struct executor *ex = w->ex;

	pthread_mutex_lock(&ex->lock);
	for (;;) {
		struct job *j;

		if (w->coming) {
			w->coming = false;
			ex->n_coming--;
		}
		j = stop_token_stopped(&ex->stopping) ? NULL : take_job(ex);
		if (j == NULL) {
			if (stop_token_stopped(&ex->stopping) || !wait_idle(ex, w))
				break;
			continue;
		}
		snprintf(w->key, sizeof(w->key), "%s", j->key);
		provide(ex); /* it may have taken the job another came for */
		pthread_mutex_unlock(&ex->lock);
		run_job(ex, w, j);
		job_free(j);
		if (atomic_fetch_add(&ex->finished, 1) % PRUNE_EVERY == PRUNE_EVERY - 1)
			state_steps_prune(ex->st, ex->steps_age_ms, ex->steps_keep);
		pthread_mutex_lock(&ex->lock);
		w->key[0] = '\0';
		ex->active--;
		pthread_cond_broadcast(&ex->cond);
	}
	w->state = W_ENDED;
	ex->n_live--;
	pthread_mutex_unlock(&ex->lock);
	return NULL;
}

/* Start a worker in a free slot. Called locked. */
static int spawn(struct executor *ex)
{
	struct worker *w = NULL;

	for (size_t i = 0; i < N_WORKERS && w == NULL; i++) {
		if (ex->workers[i].state != W_LIVE)
			w = &ex->workers[i];
	}
	if (w == NULL)
		return DRV_ESTATE;
	if (w->state == W_ENDED) /* it has let go of the lock: only its exit is left */
		pthread_join(w->thr, NULL);
	w->state = W_NONE;
	w->key[0] = '\0';
	w->coming = false;
	w->ex = ex;
	if (pthread_create(&w->thr, NULL, worker, w) != 0)
		return DRV_ESYS;
	w->state = W_LIVE;
	ex->n_live++;
	set_coming(ex, w);
	return DRV_OK;
}

/* As many workers coming to take_job() as jobs it would return: the most
 * recently idle first, then new ones. Called locked. */
static void provide(struct executor *ex)
{
	size_t want;

	if (!ex->started || stop_token_stopped(&ex->stopping))
		return;
	want = runnable(ex);
	while (ex->n_coming < want) {
		if (ex->n_idle > 0) {
			struct worker *w = &ex->workers[ex->idle[--ex->n_idle]];
			set_coming(ex, w);
			pthread_cond_signal(&w->wake);
		} else if (ex->n_live >= N_WORKERS) {
			return; /* the next worker to finish takes it */
		} else if (spawn(ex) != DRV_OK) {
			drv_warn("executor", "cannot start another worker", "workers=%zu",
			         ex->n_live);
			return;
		}
	}
}

/* --- validation --- */

static const char *check(const Drover__Instruction *ins)
{
	if (ins->action == DROVER__ACTION__ACTION_READ_LOG) {
		if (ins->log == NULL || !step_name_ok(ins->log->service))
			return "read-log without a valid service name";
		if (ins->log->slot[0] != '\0' && !step_name_ok(ins->log->slot))
			return "slot name must be 1-64 characters of [A-Za-z0-9._-]";
		return NULL;
	}
	if (ins->action == DROVER__ACTION__ACTION_RUN_HOOK) {
		if (ins->hook == NULL)
			return "run-hook without a hook";
		if (ins->hook->n_run == 0)
			return "hook without a command";
		return NULL;
	}
	if (!is_service_action(ins->action))
		return "unknown action";
	if (ins->service == NULL)
		return "service action without a service";
	if (!step_name_ok(ins->service->name))
		return "service name must be 1-64 characters of [A-Za-z0-9._-]";
	if (ins->service->slot[0] != '\0' && !step_name_ok(ins->service->slot))
		return "slot name must be 1-64 characters of [A-Za-z0-9._-]";
	if ((ins->action == DROVER__ACTION__ACTION_PRESTAGE ||
	     ins->action == DROVER__ACTION__ACTION_START) &&
	    (ins->service->image == NULL || ins->service->image->digest[0] == '\0'))
		return "image not pinned by digest";
	return NULL;
}

static Drover__Instruction *copy_ins(const Drover__Instruction *ins)
{
	size_t len = drover__instruction__get_packed_size(ins);
	uint8_t *buf = malloc(len ? len : 1);
	Drover__Instruction *c;

	if (buf == NULL)
		return NULL;
	drover__instruction__pack(ins, buf);
	c = drover__instruction__unpack(NULL, len, buf);
	free(buf);
	return c;
}

static int enqueue(struct executor *ex, const Drover__Instruction *ins, executor_report_fn fn,
                   void *arg)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return DRV_ENOMEM;
	j->ins = copy_ins(ins);
	if (j->ins == NULL) {
		free(j);
		return DRV_ENOMEM;
	}
	if (ins->action == DROVER__ACTION__ACTION_RUN_HOOK)
		snprintf(j->key, sizeof(j->key), "hook/%.70s", ins->step_id);
	else if (ins->action == DROVER__ACTION__ACTION_READ_LOG) /* not behind a start */
		snprintf(j->key, sizeof(j->key), "log/%.70s", ins->step_id);
	else
		snprintf(j->key, sizeof(j->key), "svc/%s", ins->service->name);
	j->report = fn;
	j->arg = arg;
	j->t0 = drv_mono_ms();
	pthread_mutex_lock(&ex->lock);
	if (ex->tail != NULL)
		ex->tail->next = j;
	else
		ex->head = j;
	ex->tail = j;
	ex->active++;
	provide(ex);
	pthread_mutex_unlock(&ex->lock);
	return DRV_OK;
}

int executor_run(struct executor *ex, const Drover__Instruction *ins, executor_report_fn report,
                 void *arg)
{
	struct state_step rec;
	const char *bad;
	int rc;

	if (ex == NULL || ins == NULL || report == NULL || ins->step_id == NULL ||
	    ins->step_id[0] == '\0')
		return DRV_EINVAL;
	rc = state_step_get(ex->st, ins->step_id, &rec);
	if (rc == DRV_OK) {
		if (rec.status == STEP_OK || rec.status == STEP_FAIL)
			report_recorded(ex, &rec, report, arg);
		else
			report_simple(ex, ins, DROVER__STEP_RESULT__STEP_RUNNING,
			              "step already in progress", report, arg);
		state_step_clear(&rec);
		return DRV_OK;
	}
	bad = check(ins);
	rc = state_step_insert(ex->st, ins, ins_service(ins));
	if (rc == DRV_EEXIST) /* a concurrent duplicate won the race */
		return executor_run(ex, ins, report, arg);
	if (rc != DRV_OK)
		return rc;
	if (bad != NULL) {
		state_step_finish(ex->st, ins->step_id, false, bad, 0, "", 0);
		drv_warn("executor", "step refused", "step=%s reason=\"%s\"", ins->step_id, bad);
		report_simple(ex, ins, DROVER__STEP_RESULT__STEP_FAILED, bad, report, arg);
		return DRV_OK;
	}
	/* Accepted before it is queued: a worker may finish it at once. */
	report_simple(ex, ins, DROVER__STEP_RESULT__STEP_ACCEPTED, "accepted", report, arg);
	rc = enqueue(ex, ins, report, arg);
	if (rc != DRV_OK) {
		state_step_finish(ex->st, ins->step_id, false, "agent out of memory", 0, "", 0);
		report_simple(ex, ins, DROVER__STEP_RESULT__STEP_FAILED, "agent out of memory",
		              report, arg);
	}
	return DRV_OK;
}

/* Copy a string that may be cut; cut on a UTF-8 boundary so it stays valid. */
static void copy_cut(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= cap) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

int executor_step_get(struct executor *ex, const char *step_id, struct executor_step *out)
{
	struct state_step rec;
	bool done;
	int rc = state_step_get(ex->st, step_id, &rec);

	if (rc != DRV_OK)
		return rc;
	done = rec.status == STEP_OK || rec.status == STEP_FAIL;
	out->seq = rec.seq;
	out->result = !done                   ? DROVER__STEP_RESULT__STEP_ACCEPTED
	              : rec.status == STEP_OK ? DROVER__STEP_RESULT__STEP_SUCCEEDED
	                                      : DROVER__STEP_RESULT__STEP_FAILED;
	out->exit_code = done ? rec.exit_code : 0;
	copy_cut(out->message, sizeof(out->message), done ? rec.message : "");
	state_step_clear(&rec);
	return DRV_OK;
}

int executor_step_record(struct executor *ex, const Drover__Instruction *ins, bool ok,
                         int32_t exit_code, const char *message)
{
	int rc = state_step_insert(ex->st, ins, ins_service(ins));

	if (rc == DRV_OK)
		rc = state_step_finish(ex->st, ins->step_id, ok, message, exit_code, "", 0);
	return rc;
}

void executor_drain(struct executor *ex)
{
	pthread_mutex_lock(&ex->lock);
	while (ex->active > 0)
		pthread_cond_wait(&ex->cond, &ex->lock);
	pthread_mutex_unlock(&ex->lock);
}

size_t executor_workers(struct executor *ex)
{
	size_t n;

	pthread_mutex_lock(&ex->lock);
	n = ex->n_live;
	pthread_mutex_unlock(&ex->lock);
	return n;
}

int executor_releases(struct executor *ex, Drover__Release ***out, size_t *n_out)
{
	return runtime_releases(ex->rt, out, n_out);
}

void executor_releases_free(Drover__Release **rel, size_t n)
{
	for (size_t i = 0; rel != NULL && i < n; i++)
		drover__release__free_unpacked(rel[i], NULL);
	free(rel);
}

/* --- life cycle --- */

static void report_nowhere(const Drover__Report *r, void *arg)
{
	(void)r;
	(void)arg;
}

/* Steps an agent restart interrupted: a service step still within its
 * deadline is queued again and runs to its real result (they are safe to
 * run twice: a START whose release already runs only waits for its health
 * gate); a hook (not safe to run twice), an ACTIVATE_PREVIOUS (it swaps
 * releases), or a step past its deadline is recorded failed and reported. */
static void recover_steps(struct executor *ex)
{
	struct state_step *steps = NULL;
	size_t n = 0;

	if (state_steps_interrupted(ex->st, &steps, &n) != DRV_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		struct state_step *s = &steps[i];
		if (s->ins != NULL && resumable(s->ins) &&
		    enqueue(ex, s->ins, ex->events ? ex->events : report_nowhere, ex->events_arg) ==
		            DRV_OK) {
			drv_warn("executor", "resuming a step an agent restart interrupted",
			         "step=%s action=%s service=%s", s->step_id, action_name(s->action),
			         s->service);
			continue;
		}
		state_step_finish(ex->st, s->step_id, false, INTERRUPTED, -1, "", 0);
		free(s->message);
		s->message = strdup(INTERRUPTED);
		s->status = STEP_FAIL;
		s->exit_code = -1;
		drv_warn("executor", "step interrupted by an agent restart, recorded as failed",
		         "step=%s action=%s service=%s", s->step_id, action_name(s->action),
		         s->service);
		if (ex->events != NULL && s->message != NULL)
			report_recorded(ex, s, ex->events, ex->events_arg);
	}
	state_steps_free(steps, n);
}

static int dup_opt(const char *in, const char *def, char **out)
{
	if (in == NULL)
		in = def;
	if (in == NULL) {
		*out = NULL;
		return DRV_OK;
	}
	*out = strdup(in);
	return *out ? DRV_OK : DRV_ENOMEM;
}

static int copy_config(struct executor *ex, const struct executor_config *cfg)
{
	int rc = dup_opt(cfg->state_dir, NULL, &ex->state_dir);

	if (rc == DRV_OK)
		rc = dup_opt(cfg->cache_dir, NULL, &ex->cache_dir);
	if (rc == DRV_OK)
		rc = dup_opt(cfg->releases_dir, NULL, &ex->releases_dir);
	if (rc == DRV_OK)
		rc = dup_opt(cfg->log_dir, NULL, &ex->log_dir);
	if (rc == DRV_OK)
		rc = dup_opt(cfg->docker_socket, "/run/podman/podman.sock", &ex->docker_socket);
	if (rc == DRV_OK)
		rc = dup_opt(cfg->agent_id, "", &ex->agent_id);
	if (rc != DRV_OK)
		return rc;
	if (!ex->state_dir || !ex->cache_dir || !ex->releases_dir || !ex->log_dir)
		return DRV_EINVAL;
	ex->events = cfg->events;
	ex->events_arg = cfg->events_arg;
	ex->idle_exit_ms = cfg->worker_idle_ms > 0 ? cfg->worker_idle_ms : IDLE_EXIT_MS;
	ex->steps_keep = cfg->steps_keep > 0 ? cfg->steps_keep : STEPS_KEEP;
	ex->steps_age_ms = cfg->steps_age_ms > 0 ? cfg->steps_age_ms : STEPS_AGE;
	return DRV_OK;
}

static int open_state(struct executor *ex)
{
	const char *dirs[] = {ex->state_dir, ex->cache_dir, ex->releases_dir, ex->log_dir};
	char path[4096];
	int rc;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		rc = drv_mkdirs(dirs[i], 0750);
		if (rc != DRV_OK) {
			drv_error("executor", "cannot create directory", "path=%s", dirs[i]);
			return rc;
		}
	}
	snprintf(path, sizeof(path), "%s/agent.db", ex->state_dir);
	return state_open(path, &ex->st);
}

static void events_thunk(const Drover__Report *r, void *arg)
{
	struct executor *ex = arg;
	Drover__Report copy = *r;

	copy.agent_id = ex->agent_id;
	if (ex->events != NULL)
		ex->events(&copy, ex->events_arg);
}

static int start_runtime(struct executor *ex, const struct executor_config *cfg)
{
	struct runtime_config rc = {
	        .state_dir = ex->state_dir,
	        .cache_dir = ex->cache_dir,
	        .releases_dir = ex->releases_dir,
	        .log_dir = ex->log_dir,
	        .docker_socket = ex->docker_socket,
	        .insecure_registry = cfg->insecure_registry,
	        .pull_stall_s = cfg->pull_stall_s,
	        .fetch_exe = cfg->fetch_exe,
	        .cancel = &ex->stopping,
	        .log_max_bytes = cfg->log_max_bytes,
	        .log_keep = cfg->log_keep,
	        .events = events_thunk,
	        .events_arg = ex,
	};
	return runtime_new(&rc, ex->st, &ex->rt);
}

int executor_new(const struct executor_config *cfg, struct executor **out)
{
	struct executor *ex = calloc(1, sizeof(*ex));
	pthread_condattr_t ca;
	int rc;

	if (ex == NULL)
		return DRV_ENOMEM;
	pthread_mutex_init(&ex->lock, NULL);
	pthread_cond_init(&ex->cond, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (size_t i = 0; i < N_WORKERS; i++)
		pthread_cond_init(&ex->workers[i].wake, &ca);
	pthread_condattr_destroy(&ca);
	rc = copy_config(ex, cfg);
	if (rc == DRV_OK)
		rc = open_state(ex);
	if (rc == DRV_OK)
		rc = start_runtime(ex, cfg);
	if (rc != DRV_OK) {
		executor_free(ex);
		return rc;
	}
	hook_reap_orphans(ex->state_dir);
	recover_steps(ex);
	state_steps_prune(ex->st, ex->steps_age_ms, ex->steps_keep);
	/* the first worker, which never ends, and more for recovered steps
	 * that can run beside each other */
	pthread_mutex_lock(&ex->lock);
	ex->started = true;
	rc = spawn(ex);
	if (rc == DRV_OK)
		provide(ex);
	pthread_mutex_unlock(&ex->lock);
	if (rc != DRV_OK) {
		executor_free(ex);
		return rc;
	}
	*out = ex;
	return DRV_OK;
}

void executor_free(struct executor *ex)
{
	struct job *j;

	if (ex == NULL)
		return;
	pthread_mutex_lock(&ex->lock);
	stop_token_set(&ex->stopping);
	for (size_t i = 0; i < N_WORKERS; i++)
		pthread_cond_signal(&ex->workers[i].wake);
	pthread_mutex_unlock(&ex->lock);
	for (size_t i = 0; i < N_WORKERS; i++) {
		if (ex->workers[i].state != W_NONE)
			pthread_join(ex->workers[i].thr, NULL);
		pthread_cond_destroy(&ex->workers[i].wake);
	}
	while ((j = ex->head) != NULL) {
		ex->head = j->next;
		job_free(j);
	}
	runtime_free(ex->rt);
	state_close(ex->st);
	pthread_cond_destroy(&ex->cond);
	pthread_mutex_destroy(&ex->lock);
	free(ex->state_dir);
	free(ex->cache_dir);
	free(ex->releases_dir);
	free(ex->log_dir);
	free(ex->docker_socket);
	free(ex->agent_id);
	free(ex);
}
