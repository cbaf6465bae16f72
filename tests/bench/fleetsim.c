/*
 * fleetsim.c: N virtual drover agents in one process against a real droverd
 * (or the nullcoord baseline), for the benchmarks in docs/benchmarks.md.
 *
 * Phases:
 *   1. enroll: every agent dials (at --ramp agents a second), says Hello with
 *      the enrollment token, and keeps a long poll outstanding;
 *   2. idle (--idle DUR): the fleet holds still while the coordinator's RSS
 *      and CPU are sampled from /proc (--coord-pid);
 *   3. rounds (--rounds R): a trigger makes the coordinator send work to the
 *      fleet: --queue-api queues one RUN_HOOK per agent through the admin API,
 *      --trigger runs a command (drover deploy --wait, kill -USR1 nullcoord).
 *      Measured from the trigger: until every agent holds its first
 *      instruction of the round, until every one is acknowledged (the Ack of
 *      the agent's ACCEPTED report), and each instruction's latency from its
 *      issued_at to its arrival.
 * The results go to stdout as a table and to --json FILE.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>

#include "atomicfile.h"
#include "clock.h"
#include "err.h"
#include "fsim.h"
#include "fsim_proc.h"
#include "fsim_queue.h"
#include "watchdog.h"
#include "keys.h"

extern char **environ;

struct opts {
	const char *url, *coord_key, *token_file, *prefix, *label, *queue_api, *admin_token_file;
	const char *trigger, *json_path;
	size_t n, parallel;
	unsigned rounds;
	double ramp;
	int64_t connect_timeout_ms, settle_ms, idle_ms, round_timeout_ms;
	pid_t coord_pid;
};

struct round_result {
	int64_t t0_us, queued_us, cmd_us;
	int cmd_status;
	size_t queue_failed, n_rx, n_ack;
	int64_t first_all_us, ack_all_us;           /* from t0, the slowest agent */
	int64_t rx_p50_us, rx_p99_us;               /* from t0, per agent */
	int64_t lat_p50_us, lat_p99_us, lat_max_us; /* issued_at -> arrival */
	double coord_cpu_s, self_cpu_s;             /* CPU time spent in the round */
	bool complete;
};

struct run {
	struct opts o;
	struct fsim_fleet f;
	struct fsim_agent *agents;
	char token[512], admin[512];
	int64_t enroll_us;
	double enroll_coord_cpu_s, enroll_self_cpu_s;
	bool enrolled;
	struct fsim_proc p0, p1, p_idle0, p_idle1;
	bool have_proc;
	struct round_result *rounds;
};

static const char usage[] =
        "usage: fleetsim --coordinator URL --coordinator-key FILE -n N\n"
        "                [--enroll-token-file FILE] [--id-prefix P] [--label KEY=V1,V2,...]\n"
        "                [--pull D] [--restart D] [--health D] [--hook D]\n"
        "                [--ramp AGENTS_PER_S] [--connect-timeout D] [--request-timeout D]\n"
        "                [--poll-timeout D] [--reconnect-max D] [--settle D] [--idle D]\n"
        "                [--coord-pid PID]\n"
        "                [--queue-api URL --admin-token-file FILE [--parallel K]]\n"
        "                [--trigger CMD] [--rounds R] [--round-timeout D] [--json FILE]\n"
        "N virtual agents (own key pair, id, NNG connection) against a real droverd.\n"
        "D is a duration: 250ms, 2s, 1m. See docs/benchmarks.md.\n"
        "\n"
        "  --coordinator, --coordinator-key  the link URL and droverd's public key\n"
        "  --enroll-token-file   enrollment token (agents are accepted at once)\n"
        "  --id-prefix           agent ids are PREFIX00000.. (default sim-)\n"
        "  --label               one label, its values cycled over the agents\n"
        "  --pull/--restart/--health/--hook  simulated work per instruction (0)\n"
        "  --ramp                agents started per second (1000)\n"
        "  --reconnect-max       longest pause between dials after a lost link (5s)\n"
        "  --settle              pause after enrollment, polls park (1s)\n"
        "  --idle                hold the fleet idle, sample --coord-pid's CPU\n"
        "  --coord-pid           the coordinator's PID: RSS, CPU, open files from /proc\n"
        "  --queue-api           trigger: one RUN_HOOK per agent through the admin API\n"
        "  --trigger             trigger: run CMD with /bin/sh (drover deploy --wait)\n"
        "  --rounds              how many triggers; each is timed until every agent\n"
        "                        holds an instruction and has it acknowledged\n"
        "  --json                the results as JSON (the table goes to stdout)\n";

/* ---- options ---- */

static int dur(const char *s, int64_t *out)
{
	if (drv_parse_duration_ms(s, out) != DRV_OK) {
		fprintf(stderr, "fleetsim: not a duration: %s\n", s);
		return DRV_EINVAL;
	}
	return DRV_OK;
}

static int parse_num(int ch, const char *arg, struct run *r)
{
	char *end;
	double v = strtod(arg, &end);

	if (*end != '\0' || v < 0) {
		fprintf(stderr, "fleetsim: not a number: %s\n", arg);
		return DRV_EINVAL;
	}
	switch (ch) {
	case 'n': r->o.n = (size_t)v; break;
	case 'R': r->o.ramp = v; break;
	case 'k': r->o.parallel = (size_t)v; break;
	case 'r': r->o.rounds = (unsigned)v; break;
	case 'P': r->o.coord_pid = (pid_t)v; break;
	}
	return DRV_OK;
}

static int parse_dur(int ch, const char *arg, struct run *r)
{
	struct fsim_fleet *f = &r->f;
	int64_t *dst[128] = {0};

	dst['p'] = &f->t.pull_ms;
	dst['s'] = &f->t.restart_ms;
	dst['h'] = &f->t.health_ms;
	dst['H'] = &f->t.hook_ms;
	dst['C'] = &r->o.connect_timeout_ms;
	dst['q'] = &f->request_timeout_ms;
	dst['w'] = &f->poll_timeout_ms;
	dst['S'] = &r->o.settle_ms;
	dst['i'] = &r->o.idle_ms;
	dst['T'] = &r->o.round_timeout_ms;
	dst['M'] = &f->reconnect_max_ms;
	return dur(arg, dst[ch]);
}

static int parse(int argc, char **argv, struct run *r)
{
	static const struct option lo[] = {{"coordinator", 1, NULL, 'u'},
	                                   {"coordinator-key", 1, NULL, 'K'},
	                                   {"enroll-token-file", 1, NULL, 'e'},
	                                   {"id-prefix", 1, NULL, 'x'},
	                                   {"label", 1, NULL, 'l'},
	                                   {"pull", 1, NULL, 'p'},
	                                   {"restart", 1, NULL, 's'},
	                                   {"health", 1, NULL, 'h'},
	                                   {"hook", 1, NULL, 'H'},
	                                   {"ramp", 1, NULL, 'R'},
	                                   {"connect-timeout", 1, NULL, 'C'},
	                                   {"request-timeout", 1, NULL, 'q'},
	                                   {"poll-timeout", 1, NULL, 'w'},
	                                   {"reconnect-max", 1, NULL, 'M'},
	                                   {"settle", 1, NULL, 'S'},
	                                   {"idle", 1, NULL, 'i'},
	                                   {"coord-pid", 1, NULL, 'P'},
	                                   {"queue-api", 1, NULL, 'a'},
	                                   {"admin-token-file", 1, NULL, 'A'},
	                                   {"parallel", 1, NULL, 'k'},
	                                   {"trigger", 1, NULL, 't'},
	                                   {"rounds", 1, NULL, 'r'},
	                                   {"round-timeout", 1, NULL, 'T'},
	                                   {"json", 1, NULL, 'j'},
	                                   {"help", 0, NULL, '?'},
	                                   {NULL, 0, NULL, 0}};
	int ch;

	while ((ch = getopt_long(argc, argv, "n:", lo, NULL)) != -1) {
		int rc = DRV_OK;
		switch (ch) {
		case 'u': r->o.url = optarg; break;
		case 'K': r->o.coord_key = optarg; break;
		case 'e': r->o.token_file = optarg; break;
		case 'x': r->o.prefix = optarg; break;
		case 'l': r->o.label = optarg; break;
		case 'a': r->o.queue_api = optarg; break;
		case 'A': r->o.admin_token_file = optarg; break;
		case 't': r->o.trigger = optarg; break;
		case 'j': r->o.json_path = optarg; break;
		case 'n':
		case 'R':
		case 'k':
		case 'r':
		case 'P': rc = parse_num(ch, optarg, r); break;
		case 'p':
		case 's':
		case 'h':
		case 'H':
		case 'C':
		case 'q':
		case 'w':
		case 'M':
		case 'S':
		case 'i':
		case 'T': rc = parse_dur(ch, optarg, r); break;
		default: return DRV_EINVAL;
		}
		if (rc != DRV_OK)
			return rc;
	}
	if (optind != argc || r->o.url == NULL || r->o.coord_key == NULL || r->o.n == 0 ||
	    r->o.n > 100000 || (r->o.queue_api != NULL) != (r->o.admin_token_file != NULL) ||
	    (r->o.rounds > 0 && r->o.queue_api == NULL && r->o.trigger == NULL))
		return DRV_EINVAL;
	return DRV_OK;
}

static void defaults(struct run *r)
{
	r->o.prefix = "sim-";
	r->o.ramp = 1000;
	r->o.connect_timeout_ms = 300000;
	r->o.settle_ms = 1000;
	r->o.round_timeout_ms = 300000;
	r->f.request_timeout_ms = 60000;
	r->f.poll_timeout_ms = 25000;
	r->f.reconnect_min_ms = 100;
	r->f.reconnect_max_ms = 5000;
}

/* ---- setup ---- */

static int read_secret(const char *path, char *out, size_t cap)
{
	char *text;
	size_t n;

	if (drv_read_file(path, cap - 1, &text, &n) != DRV_OK) {
		fprintf(stderr, "fleetsim: cannot read %s\n", path);
		return DRV_EIO;
	}
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
		n--;
	memcpy(out, text, n);
	out[n] = '\0';
	free(text);
	return DRV_OK;
}

static int split_label(struct run *r)
{
	char *eq, *v, *save = NULL, *copy;
	size_t cap = 16;

	if (r->o.label == NULL)
		return DRV_OK;
	copy = strdup(r->o.label);
	r->f.label_values = calloc(cap, sizeof(char *));
	if (copy == NULL || r->f.label_values == NULL || (eq = strchr(copy, '=')) == NULL) {
		free(copy);
		return DRV_EINVAL;
	}
	*eq = '\0';
	r->f.label_key = copy;
	for (v = strtok_r(eq + 1, ",", &save); v != NULL && r->f.n_label_values < cap;
	     v = strtok_r(NULL, ",", &save))
		r->f.label_values[r->f.n_label_values++] = v;
	return r->f.n_label_values > 0 ? DRV_OK : DRV_EINVAL;
}

/* Each agent is one connection: make sure the process may open them. */
static int raise_nofile(size_t n)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)n + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return DRV_ESYS;
	if (rl.rlim_cur < want) {
		rl.rlim_cur =
		        rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want) {
		fprintf(stderr,
		        "fleetsim: %zu agents need %llu open files; the hard limit is %llu "
		        "(raise it: ulimit -Hn, or LimitNOFILE=)\n",
		        n, (unsigned long long)want, (unsigned long long)rl.rlim_max);
		return DRV_EPERM;
	}
	return DRV_OK;
}

static int setup(struct run *r)
{
	struct fsim_fleet *f = &r->f;

	if (raise_nofile(r->o.n) != DRV_OK || split_label(r) != DRV_OK)
		return DRV_EINVAL;
	drv_keyring_init(&f->ring);
	if (drv_keyring_add_file(&f->ring, r->o.coord_key) != DRV_OK) {
		fprintf(stderr, "fleetsim: cannot load the coordinator key %s\n", r->o.coord_key);
		return DRV_EIO;
	}
	if (r->o.token_file != NULL &&
	    read_secret(r->o.token_file, r->token, sizeof(r->token)) != DRV_OK)
		return DRV_EIO;
	if (r->o.admin_token_file != NULL &&
	    read_secret(r->o.admin_token_file, r->admin, sizeof(r->admin)) != DRV_OK)
		return DRV_EIO;
	f->url = r->o.url;
	f->enroll_token = r->o.token_file != NULL ? r->token : NULL;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	r->agents = calloc(r->o.n, sizeof(*r->agents));
	r->rounds = calloc(r->o.rounds + 1, sizeof(*r->rounds));
	if (r->agents == NULL || r->rounds == NULL)
		return DRV_ENOMEM;
	for (size_t i = 0; i < r->o.n; i++) {
		if (fsim_agent_init(&r->agents[i], f, (unsigned)i, r->o.prefix) != DRV_OK) {
			fprintf(stderr, "fleetsim: bad id prefix or no keys: %s\n", r->o.prefix);
			return DRV_EINVAL;
		}
	}
	return DRV_OK;
}

/* ---- waiting ---- */

/* Wait until *counter reaches want (true) or deadline_us passes (false). */
static bool wait_count(struct fsim_fleet *f, atomic_uint *counter, unsigned want,
                       int64_t deadline_us)
{
	bool ok;

	pthread_mutex_lock(&f->mu);
	while (!(ok = atomic_load(counter) >= want) && fsim_mono_us() < deadline_us) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L; /* re-check at least every 100 ms */
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&f->cv, &f->mu, &ts);
	}
	pthread_mutex_unlock(&f->mu);
	return ok;
}

static bool busy(struct fsim_fleet *f)
{
	return atomic_load(&f->n_reports_out) > 0 || atomic_load(&f->n_work_out) > 0;
}

/* Wait until every instruction is worked off and every report delivered. */
static bool reports_drained(struct fsim_fleet *f, int64_t deadline_us)
{
	while (busy(f) && fsim_mono_us() < deadline_us) {
		pthread_mutex_lock(&f->mu);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&f->cv, &f->mu, &ts);
		pthread_mutex_unlock(&f->mu);
	}
	return !busy(f);
}

static void nap_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- phases ---- */

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The coordinator's CPU time so far (0 without --coord-pid). */
static double coord_cpu_s(const struct run *r)
{
	struct fsim_proc p;

	return r->o.coord_pid > 0 && fsim_proc_sample(r->o.coord_pid, &p) == DRV_OK ? p.cpu_s : 0;
}

static void sample(struct run *r, struct fsim_proc *p)
{
	if (r->o.coord_pid > 0 && fsim_proc_sample(r->o.coord_pid, p) == DRV_OK)
		r->have_proc = true;
}

static int enroll(struct run *r)
{
	int64_t t0 = fsim_mono_us(), deadline = t0 + r->o.connect_timeout_ms * 1000;

	double cpu0 = coord_cpu_s(r), self0 = self_cpu_s();

	sample(r, &r->p0);
	for (size_t i = 0; i < r->o.n; i++) {
		int64_t due = t0 + (int64_t)((double)i * 1e6 / r->o.ramp);
		if (fsim_mono_us() < due)
			nap_ms((due - fsim_mono_us()) / 1000);
		if (fsim_agent_start(&r->agents[i]) != DRV_OK)
			return DRV_EIO;
	}
	while (!wait_count(&r->f, &r->f.n_polling, (unsigned)r->o.n,
	                   fsim_mono_us() + 5000000 < deadline ? fsim_mono_us() + 5000000
	                                                       : deadline) &&
	       fsim_mono_us() < deadline)
		fprintf(stderr, "fleetsim: enrolling: %u/%zu polling, %llu refused replies\n",
		        atomic_load(&r->f.n_polling), r->o.n,
		        (unsigned long long)atomic_load(&r->f.rejects));
	if (atomic_load(&r->f.n_polling) < r->o.n) {
		fprintf(stderr, "fleetsim: only %u of %zu agents enrolled within %lld ms\n",
		        atomic_load(&r->f.n_polling), r->o.n, (long long)r->o.connect_timeout_ms);
		return DRV_ETIMEDOUT;
	}
	r->enroll_us = fsim_mono_us() - t0;
	r->enroll_coord_cpu_s = coord_cpu_s(r) - cpu0;
	r->enroll_self_cpu_s = self_cpu_s() - self0;
	r->enrolled = true;
	nap_ms(r->o.settle_ms); /* let the coordinator park every poll */
	sample(r, &r->p1);
	return DRV_OK;
}

static void idle(struct run *r)
{
	if (r->o.idle_ms <= 0)
		return;
	sample(r, &r->p_idle0);
	nap_ms(r->o.idle_ms);
	sample(r, &r->p_idle1);
}

static int run_trigger(const char *cmd, pid_t *pid)
{
	char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};

	return posix_spawn(pid, "/bin/sh", NULL, NULL, argv, environ) == 0 ? DRV_OK : DRV_ESYS;
}

static int trigger(struct run *r, unsigned round, struct round_result *res, pid_t *pid)
{
	const char **ids;
	char prefix[64];
	int rc;

	*pid = -1;
	if (r->o.trigger != NULL)
		return run_trigger(r->o.trigger, pid);
	ids = calloc(r->o.n, sizeof(*ids));
	if (ids == NULL)
		return DRV_ENOMEM;
	for (size_t i = 0; i < r->o.n; i++)
		ids[i] = r->agents[i].id;
	snprintf(prefix, sizeof(prefix), "fan-%lld-%u", (long long)(fsim_wall_us() / 1000), round);
	struct fsim_queue_req q = {r->o.queue_api, r->admin, prefix, ids, r->o.n, r->o.parallel};
	rc = fsim_queue_all(&q, &res->queue_failed);
	res->queued_us = fsim_wall_us() - res->t0_us;
	free(ids);
	return rc;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int64_t pct(const int64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return n == 0 ? -1 : v[i < n ? i : n - 1];
}

/* Per-agent figures of the round, from the agents' records. */
static void collect(struct run *r, struct round_result *res)
{
	int64_t *rx = calloc(r->o.n, sizeof(int64_t)), *lat = calloc(r->o.n, sizeof(int64_t));
	size_t n = 0;

	for (size_t i = 0; rx != NULL && lat != NULL && i < r->o.n; i++) {
		struct fsim_agent *a = &r->agents[i];
		pthread_mutex_lock(&a->mu);
		if (a->round_rx_wall_us > 0) {
			rx[n] = a->round_rx_wall_us - res->t0_us;
			lat[n] = a->round_rx_wall_us - a->round_issued_ms * 1000;
			n++;
		}
		if (a->round_ack_wall_us - res->t0_us > res->ack_all_us)
			res->ack_all_us = a->round_ack_wall_us - res->t0_us;
		pthread_mutex_unlock(&a->mu);
	}
	if (n > 0) {
		qsort(rx, n, sizeof(int64_t), cmp64);
		qsort(lat, n, sizeof(int64_t), cmp64);
		res->first_all_us = rx[n - 1];
		res->rx_p50_us = pct(rx, n, 0.5);
		res->rx_p99_us = pct(rx, n, 0.99);
		res->lat_p50_us = pct(lat, n, 0.5);
		res->lat_p99_us = pct(lat, n, 0.99);
		res->lat_max_us = lat[n - 1];
	}
	free(rx);
	free(lat);
}

static int one_round(struct run *r, unsigned round, struct round_result *res)
{
	int64_t deadline = fsim_mono_us() + r->o.round_timeout_ms * 1000;
	double cpu0 = coord_cpu_s(r), self0 = self_cpu_s();
	unsigned n = (unsigned)r->o.n;
	pid_t pid;
	int rc;

	for (size_t i = 0; i < r->o.n; i++)
		fsim_round_reset(&r->agents[i]);
	atomic_store(&r->f.n_round_rx, 0);
	atomic_store(&r->f.n_round_ack, 0);
	res->t0_us = fsim_wall_us();
	rc = trigger(r, round, res, &pid);
	if (rc != DRV_OK) {
		fprintf(stderr, "fleetsim: round %u: the trigger failed\n", round);
		return rc;
	}
	if (pid > 0) {
		waitpid(pid, &res->cmd_status, 0);
		res->cmd_us = fsim_wall_us() - res->t0_us;
	}
	res->complete = wait_count(&r->f, &r->f.n_round_rx, n, deadline) &&
	                wait_count(&r->f, &r->f.n_round_ack, n, deadline);
	reports_drained(&r->f, deadline);
	res->coord_cpu_s = coord_cpu_s(r) - cpu0;
	res->self_cpu_s = self_cpu_s() - self0;
	res->n_rx = atomic_load(&r->f.n_round_rx);
	res->n_ack = atomic_load(&r->f.n_round_ack);
	collect(r, res);
	if (pid > 0 && !(WIFEXITED(res->cmd_status) && WEXITSTATUS(res->cmd_status) == 0))
		res->complete = false;
	return res->complete ? DRV_OK : DRV_ETIMEDOUT;
}

/* ---- output ---- */

static double ms(int64_t us)
{
	return (double)us / 1000.0;
}

static void set_ms(json_t *o, const char *k, double v)
{
	json_object_set_new(o, k, json_real(v));
}

static json_t *round_json(const struct round_result *x)
{
	json_t *o = json_object();

	json_object_set_new(o, "complete", json_boolean(x->complete));
	json_object_set_new(o, "agents_rx", json_integer((json_int_t)x->n_rx));
	json_object_set_new(o, "agents_acked", json_integer((json_int_t)x->n_ack));
	set_ms(o, "queue_all_ms", ms(x->queued_us));
	set_ms(o, "first_instruction_all_ms", ms(x->first_all_us));
	set_ms(o, "acked_all_ms", ms(x->ack_all_us));
	set_ms(o, "rx_p50_ms", ms(x->rx_p50_us));
	set_ms(o, "rx_p99_ms", ms(x->rx_p99_us));
	set_ms(o, "latency_p50_ms", ms(x->lat_p50_us));
	set_ms(o, "latency_p99_ms", ms(x->lat_p99_us));
	set_ms(o, "latency_max_ms", ms(x->lat_max_us));
	set_ms(o, "command_ms", ms(x->cmd_us));
	json_object_set_new(o, "command_exit",
	                    json_integer(x->cmd_us > 0 && WIFEXITED(x->cmd_status)
	                                         ? WEXITSTATUS(x->cmd_status)
	                                         : -1));
	set_ms(o, "coordinator_cpu_ms", x->coord_cpu_s * 1000);
	set_ms(o, "fleetsim_cpu_ms", x->self_cpu_s * 1000);
	return o;
}

static json_t *proc_json(const struct run *r)
{
	const struct fsim_proc *last = r->o.idle_ms > 0 ? &r->p_idle1 : &r->p1;
	double n = (double)r->o.n, idle_s = (double)r->o.idle_ms / 1000.0;
	double idle_cpu = r->p_idle1.cpu_s - r->p_idle0.cpu_s;
	json_t *o;

	if (!r->have_proc)
		return json_null();
	o = json_object();
	json_object_set_new(o, "rss_before_kb", json_integer(r->p0.rss_kb));
	json_object_set_new(o, "rss_connected_kb", json_integer(r->p1.rss_kb));
	json_object_set_new(o, "rss_last_kb", json_integer(last->rss_kb));
	json_object_set_new(o, "hwm_kb", json_integer(last->hwm_kb));
	json_object_set_new(o, "rss_per_agent_kb",
	                    json_real((double)(last->rss_kb - r->p0.rss_kb) / n));
	json_object_set_new(o, "threads", json_integer(last->threads));
	json_object_set_new(o, "fds", json_integer(r->p1.fds));
	json_object_set_new(o, "nofile_soft", json_integer(r->p1.nofile_soft));
	if (idle_s > 0) {
		json_object_set_new(o, "idle_s", json_real(idle_s));
		json_object_set_new(o, "idle_cpu_us_per_agent_s",
		                    json_real(idle_cpu * 1e6 / idle_s / n));
		json_object_set_new(o, "idle_cpu_percent", json_real(idle_cpu * 100.0 / idle_s));
	}
	return o;
}

static json_t *totals_json(const struct fsim_fleet *f)
{
	struct {
		const char *k;
		const atomic_ullong *v;
	} t[] = {{"hellos", &f->hellos},   {"polls", &f->polls},
	         {"idles", &f->idles},     {"instructions", &f->instructions},
	         {"reports", &f->reports}, {"rejects", &f->rejects},
	         {"errors", &f->errors}};
	json_t *o = json_object();

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		json_object_set_new(o, t[i].k, json_integer((json_int_t)atomic_load(t[i].v)));
	return o;
}

static json_t *result_json(const struct run *r)
{
	const struct fsim_fleet *f = &r->f;
	json_t *o = json_object(), *rounds = json_array();

	for (unsigned i = 0; i < r->o.rounds; i++)
		json_array_append_new(rounds, round_json(&r->rounds[i]));
	json_object_set_new(o, "agents", json_integer((json_int_t)r->o.n));
	json_object_set_new(o, "coordinator", json_string(r->o.url));
	json_object_set_new(o, "enrolled", json_boolean(r->enrolled));
	set_ms(o, "enroll_ms", ms(r->enroll_us));
	set_ms(o, "enroll_coordinator_cpu_ms", r->enroll_coord_cpu_s * 1000);
	set_ms(o, "enroll_fleetsim_cpu_ms", r->enroll_self_cpu_s * 1000);
	json_object_set_new(o, "timing_ms",
	                    json_pack("{s:I, s:I, s:I, s:I}", "pull", (json_int_t)f->t.pull_ms,
	                              "restart", (json_int_t)f->t.restart_ms, "health",
	                              (json_int_t)f->t.health_ms, "hook",
	                              (json_int_t)f->t.hook_ms));
	json_object_set_new(o, "coordinator_proc", proc_json(r));
	json_object_set_new(o, "rounds", rounds);
	json_object_set_new(o, "totals", totals_json(f));
	return o;
}

static void print_table(const struct run *r, json_t *j)
{
	json_t *p = json_object_get(j, "coordinator_proc");

	printf("fleetsim: %zu agents -> %s\n", r->o.n, r->o.url);
	printf("  %-44s %10.1f ms\n", "enrolled, every agent polling", ms(r->enroll_us));
	if (r->o.coord_pid > 0)
		printf("  %-44s %10.1f ms (%.3f ms per agent)\n", "coordinator CPU to enroll",
		       r->enroll_coord_cpu_s * 1000, r->enroll_coord_cpu_s * 1000 / (double)r->o.n);
	if (json_is_object(p)) {
		printf("  %-44s %10.2f KiB\n", "coordinator RSS per connected agent",
		       json_real_value(json_object_get(p, "rss_per_agent_kb")));
		if (r->o.idle_ms > 0)
			printf("  %-44s %10.2f us/s (%.2f %% of a core in total)\n",
			       "coordinator CPU per idle agent",
			       json_real_value(json_object_get(p, "idle_cpu_us_per_agent_s")),
			       json_real_value(json_object_get(p, "idle_cpu_percent")));
		printf("  %-44s %10lld / %lld\n", "coordinator open files / RLIMIT_NOFILE",
		       (long long)r->p1.fds, (long long)r->p1.nofile_soft);
	}
	for (unsigned i = 0; i < r->o.rounds; i++) {
		const struct round_result *x = &r->rounds[i];
		printf("  round %u%s: %zu/%zu received, %zu acknowledged\n", i + 1,
		       x->complete ? "" : " (INCOMPLETE)", x->n_rx, r->o.n, x->n_ack);
		if (x->queued_us > 0)
			printf("    %-42s %10.1f ms (%zu failed)\n", "queued through the API",
			       ms(x->queued_us), x->queue_failed);
		if (x->cmd_us > 0)
			printf("    %-42s %10.1f ms (exit %d)\n", "trigger command", ms(x->cmd_us),
			       WIFEXITED(x->cmd_status) ? WEXITSTATUS(x->cmd_status) : -1);
		printf("    %-42s %10.1f ms (p50 %.1f, p99 %.1f)\n",
		       "every agent holds its instruction", ms(x->first_all_us), ms(x->rx_p50_us),
		       ms(x->rx_p99_us));
		printf("    %-42s %10.1f ms\n", "every instruction acknowledged",
		       ms(x->ack_all_us));
		printf("    %-42s p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		       "latency issued_at -> agent", ms(x->lat_p50_us), ms(x->lat_p99_us),
		       ms(x->lat_max_us));
		if (r->o.coord_pid > 0)
			printf("    %-42s %10.1f ms (%.3f ms per agent)\n", "coordinator CPU",
			       x->coord_cpu_s * 1000, x->coord_cpu_s * 1000 / (double)r->o.n);
	}
}

static int output(struct run *r)
{
	json_t *j = result_json(r);
	char *text;
	int rc = DRV_OK;

	if (j == NULL)
		return DRV_ENOMEM;
	print_table(r, j);
	if (r->o.json_path != NULL) {
		text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
		rc = text != NULL ? drv_write_atomic(r->o.json_path, text, strlen(text), 0644)
		                  : DRV_ENOMEM;
		free(text);
	}
	json_decref(j);
	return rc;
}

/* ---- main ---- */

#define TEARDOWN_MS 10000

static void stop_all(void *arg)
{
	struct run *r = arg;

	for (size_t i = 0; r->agents != NULL && i < r->o.n; i++)
		fsim_agent_stop(&r->agents[i]);
}

/* False if the agents' sockets did not close in time: NNG 1.5.2's
 * nng_close can hang when a reply arrives while it closes, as it does when
 * the round ends before the deployment (FANOUT_WAIT=0: the coordinator goes
 * on sending). Then nothing is freed and the caller ends the process with
 * _exit (nng_fini would wait for the stuck close, and returning from main
 * would pull r from under it). */
static bool teardown(struct run *r)
{
	atomic_store(&r->f.stopping, true);
	if (drv_run_within(TEARDOWN_MS, "closing the simulated agents' sockets", stop_all, r) !=
	    DRV_OK) {
		fprintf(stderr,
		        "fleetsim: the agents' sockets did not close within %d s (NNG's close "
		        "hang while the coordinator still sends); exiting without it\n",
		        TEARDOWN_MS / 1000);
		return false;
	}
	for (size_t i = 0; r->agents != NULL && i < r->o.n; i++)
		fsim_agent_free(&r->agents[i]);
	free(r->agents);
	free(r->rounds);
	if (r->f.label_values != NULL)
		free((char *)r->f.label_key);
	free(r->f.label_values);
	return true;
}

int main(int argc, char **argv)
{
	struct run r;
	int rc;

	memset(&r, 0, sizeof(r));
	defaults(&r);
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (parse(argc, argv, &r) != DRV_OK) {
		fputs(usage, stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (drv_crypto_init() != DRV_OK || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return 1;
	rc = setup(&r);
	if (rc == DRV_OK)
		rc = enroll(&r);
	if (rc == DRV_OK)
		idle(&r);
	for (unsigned i = 0; rc == DRV_OK && i < r.o.rounds; i++)
		rc = one_round(&r, i + 1, &r.rounds[i]);
	if (r.enrolled)
		output(&r);
	fflush(stdout);      /* the figures are out even if the teardown is not */
	if (!teardown(&r)) { /* the stuck close's thread still reads r, on this stack */
		fflush(NULL);
		_exit(rc == DRV_OK ? 0 : 1);
	}
	curl_global_cleanup();
	nng_fini();
	return rc == DRV_OK ? 0 : 1;
}
