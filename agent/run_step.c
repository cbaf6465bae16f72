/*
 * run_step.c: the run-step debug entry: JSON -> Instruction -> executor,
 * reports printed as JSON lines on stdout.
 */
#include "run_step.h"

#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomicfile.h"
#include "clock.h"
#include "err.h"
#include "executor.h"
#include "log.h"
#include "wire_names.h"

#define RUN_STEP_MAX (1u << 20)

static const char usage[] =
        "usage: drover-agent run-step FILE|- [--dir DIR] [--state-dir D] [--cache-dir D]\n"
        "                [--releases-dir D] [--log-dir D] [--docker-socket PATH]\n"
        "                [--insecure-registry] [--watch MS] [--log-level L]\n"
        "                [--pull-stall-s S] [--log-max-bytes N] [--log-keep N]\n"
        "                [--fetch-exe PATH]\n"
        "       drover-agent run-step --status [--dir DIR | --state-dir D ...]\n"
        "Runs one instruction described in JSON (see docs/agent.md) and prints every\n"
        "report as a JSON line. --dir DIR sets state/, cache/, releases/, log/ under DIR.\n"
        "--watch MS keeps supervising for MS ms afterwards, printing health events.\n"
        "--fetch-exe PATH: the fetch and unpack helpers' executable (default: this\n"
        "drover-agent); tests put a hostile helper there.\n"
        "Exit: 0 succeeded, 1 failed, 2 usage or invalid input.\n";

struct perr {
	char *buf;
	size_t size;
	const char *where;
};

__attribute__((format(printf, 2, 3))) static int fail(struct perr *e, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(e->buf, e->size, "%s: ", e->where);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < e->size)
		vsnprintf(e->buf + n, e->size - (size_t)n, fmt, ap);
	va_end(ap);
	return DRV_EINVAL;
}

static int get_str(struct perr *e, json_t *obj, const char *key, char **out)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return DRV_OK;
	if (!json_is_string(v))
		return fail(e, "'%s' must be a string", key);
	char *s = strdup(json_string_value(v));
	if (s == NULL)
		return DRV_ENOMEM;
	*out = s;
	return DRV_OK;
}

static int get_u32(struct perr *e, json_t *obj, const char *key, uint32_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return DRV_OK;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > (json_int_t)UINT32_MAX)
		return fail(e, "'%s' must be an integer 0..4294967295", key);
	*out = (uint32_t)json_integer_value(v);
	return DRV_OK;
}

static int get_bool(struct perr *e, json_t *obj, const char *key, protobuf_c_boolean *out)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return DRV_OK;
	if (!json_is_boolean(v))
		return fail(e, "'%s' must be true or false", key);
	*out = json_is_true(v);
	return DRV_OK;
}

static int check_keys(struct perr *e, json_t *obj, const char *what, const char *const *allowed)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return fail(e, "%s must be an object", what);
	json_object_foreach(obj, key, v)
	{
		size_t i;
		for (i = 0; allowed[i] != NULL && strcmp(allowed[i], key) != 0; i++)
			;
		if (allowed[i] == NULL)
			return fail(e, "unknown key '%s' in %s", key, what);
	}
	return DRV_OK;
}

static int get_strv(struct perr *e, json_t *obj, const char *key, char ***out, size_t *n)
{
	json_t *v = json_object_get(obj, key), *x;
	size_t i;

	if (v == NULL)
		return DRV_OK;
	if (!json_is_array(v) || json_array_size(v) > 1024)
		return fail(e, "'%s' must be an array of at most 1024 strings", key);
	*out = calloc(json_array_size(v) + 1, sizeof(char *));
	if (*out == NULL)
		return DRV_ENOMEM;
	json_array_foreach(v, i, x)
	{
		if (!json_is_string(x))
			return fail(e, "'%s'[%zu] must be a string", key, i);
		(*out)[i] = strdup(json_string_value(x));
		if ((*out)[i] == NULL)
			return DRV_ENOMEM;
		*n = i + 1;
	}
	return DRV_OK;
}

static int get_env(struct perr *e, json_t *obj, const char *key, Drover__KeyValue ***out, size_t *n)
{
	json_t *v = json_object_get(obj, key), *x;
	const char *k;

	if (v == NULL)
		return DRV_OK;
	if (!json_is_object(v) || json_object_size(v) > 1024)
		return fail(e, "'%s' must be an object of strings", key);
	*out = calloc(json_object_size(v) + 1, sizeof(**out));
	if (*out == NULL)
		return DRV_ENOMEM;
	json_object_foreach(v, k, x)
	{
		Drover__KeyValue *kv;
		if (!json_is_string(x))
			return fail(e, "'%s'.%s must be a string", key, k);
		kv = malloc(sizeof(*kv));
		if (kv == NULL)
			return DRV_ENOMEM;
		drover__key_value__init(kv);
		(*out)[(*n)++] = kv;
		kv->key = strdup(k);
		kv->value = strdup(json_string_value(x));
		if (kv->key == NULL || kv->value == NULL)
			return DRV_ENOMEM;
	}
	return DRV_OK;
}

static int get_files(struct perr *e, json_t *svc, Drover__ServiceSpec *s)
{
	json_t *v = json_object_get(svc, "files"), *x;
	const char *k;

	if (v == NULL)
		return DRV_OK;
	if (!json_is_object(v) || json_object_size(v) > 256)
		return fail(e, "'files' must be an object {path: content}");
	s->files = calloc(json_object_size(v) + 1, sizeof(*s->files));
	if (s->files == NULL)
		return DRV_ENOMEM;
	json_object_foreach(v, k, x)
	{
		Drover__File *f;
		if (!json_is_string(x))
			return fail(e, "files.%s must be a string", k);
		f = malloc(sizeof(*f));
		if (f == NULL)
			return DRV_ENOMEM;
		drover__file__init(f);
		s->files[s->n_files++] = f;
		f->path = strdup(k);
		f->content.len = json_string_length(x);
		f->content.data = malloc(f->content.len + 1);
		if (f->path == NULL || f->content.data == NULL)
			return DRV_ENOMEM;
		memcpy(f->content.data, json_string_value(x), f->content.len);
		f->mode = 0; /* the agent's default (0640) */
	}
	return DRV_OK;
}

static int kind_of(struct perr *e, const char *s, Drover__HealthKind *out)
{
	static const char *const names[] = {"none", "http", "tcp", "exec"};
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (Drover__HealthKind)i;
			return DRV_OK;
		}
	}
	return fail(e, "health.kind '%s' is not none, http, tcp or exec", s);
}

static int get_health(struct perr *e, json_t *svc, Drover__ServiceSpec *s)
{
	static const char *const keys[] = {"kind",
	                                   "host",
	                                   "port",
	                                   "path",
	                                   "status_min",
	                                   "status_max",
	                                   "body_match",
	                                   "exec",
	                                   "initial_delay_ms",
	                                   "interval_ms",
	                                   "timeout_ms",
	                                   "healthy_threshold",
	                                   "unhealthy_threshold",
	                                   "deadline_ms",
	                                   NULL};
	json_t *h = json_object_get(svc, "health");
	Drover__HealthCheck *hc;
	char *kind = NULL;
	int rc;

	if (h == NULL)
		return DRV_OK;
	rc = check_keys(e, h, "health", keys);
	if (rc != DRV_OK)
		return rc;
	hc = malloc(sizeof(*hc));
	if (hc == NULL)
		return DRV_ENOMEM;
	drover__health_check__init(hc);
	s->health = hc;
	rc = get_str(e, h, "kind", &kind);
	if (rc == DRV_OK && kind != NULL)
		rc = kind_of(e, kind, &hc->kind);
	free(kind);
	if (rc == DRV_OK)
		rc = get_str(e, h, "host", &hc->host);
	if (rc == DRV_OK)
		rc = get_str(e, h, "path", &hc->path);
	if (rc == DRV_OK)
		rc = get_str(e, h, "body_match", &hc->body_match);
	if (rc == DRV_OK)
		rc = get_strv(e, h, "exec", &hc->exec, &hc->n_exec);
	struct {
		const char *k;
		uint32_t *p;
	} nums[] = {{"port", &hc->port},
	            {"status_min", &hc->status_min},
	            {"status_max", &hc->status_max},
	            {"initial_delay_ms", &hc->initial_delay_ms},
	            {"interval_ms", &hc->interval_ms},
	            {"timeout_ms", &hc->timeout_ms},
	            {"healthy_threshold", &hc->healthy_threshold},
	            {"unhealthy_threshold", &hc->unhealthy_threshold},
	            {"deadline_ms", &hc->deadline_ms}};
	for (size_t i = 0; rc == DRV_OK && i < sizeof(nums) / sizeof(nums[0]); i++)
		rc = get_u32(e, h, nums[i].k, nums[i].p);
	return rc;
}

static int get_image(struct perr *e, json_t *svc, Drover__ServiceSpec *s)
{
	static const char *const keys[] = {"reference", "digest", NULL};
	json_t *im = json_object_get(svc, "image");
	int rc;

	if (im == NULL)
		return DRV_OK;
	rc = check_keys(e, im, "image", keys);
	if (rc != DRV_OK)
		return rc;
	s->image = malloc(sizeof(*s->image));
	if (s->image == NULL)
		return DRV_ENOMEM;
	drover__image_ref__init(s->image);
	rc = get_str(e, im, "reference", &s->image->reference);
	if (rc == DRV_OK)
		rc = get_str(e, im, "digest", &s->image->digest);
	return rc;
}

static int get_enum(struct perr *e, json_t *obj, const char *key, const char *const *names,
                    int *out)
{
	char *v = NULL;
	int rc = get_str(e, obj, key, &v);

	if (rc != DRV_OK || v == NULL)
		return rc;
	for (int i = 0; names[i] != NULL; i++) {
		if (names[i][0] != '\0' && strcmp(names[i], v) == 0) {
			*out = i;
			free(v);
			return DRV_OK;
		}
	}
	rc = fail(e, "'%s' has an unknown value '%s'", key, v);
	free(v);
	return rc;
}

static int get_service(struct perr *e, json_t *root, Drover__Instruction *ins)
{
	static const char *const keys[] = {
	        "name",         "version",    "image", "driver",        "command", "env",  "files",
	        "health",       "isolation",  "port",  "stop_grace_ms", "slot",    "user", "group",
	        "capabilities", "keep_setid", NULL};
	static const char *const drivers[] = {"", "exec", "container", NULL};
	static const char *const isol[] = {"none", "chroot", NULL};
	json_t *svc = json_object_get(root, "service");
	Drover__ServiceSpec *s;
	int rc, drv = 0, iso = 0;

	if (svc == NULL)
		return DRV_OK;
	rc = check_keys(e, svc, "service", keys);
	if (rc != DRV_OK)
		return rc;
	s = malloc(sizeof(*s));
	if (s == NULL)
		return DRV_ENOMEM;
	drover__service_spec__init(s);
	ins->service = s;
	rc = get_str(e, svc, "name", &s->name);
	if (rc == DRV_OK)
		rc = get_str(e, svc, "version", &s->version);
	if (rc == DRV_OK)
		rc = get_str(e, svc, "slot", &s->slot);
	if (rc == DRV_OK)
		rc = get_image(e, svc, s);
	if (rc == DRV_OK)
		rc = get_enum(e, svc, "driver", drivers, &drv);
	if (rc == DRV_OK)
		rc = get_enum(e, svc, "isolation", isol, &iso);
	s->driver = (Drover__Driver)drv;
	s->isolation = (Drover__Isolation)iso;
	if (rc == DRV_OK)
		rc = get_strv(e, svc, "command", &s->command, &s->n_command);
	if (rc == DRV_OK)
		rc = get_env(e, svc, "env", &s->env, &s->n_env);
	if (rc == DRV_OK)
		rc = get_files(e, svc, s);
	if (rc == DRV_OK)
		rc = get_health(e, svc, s);
	if (rc == DRV_OK)
		rc = get_u32(e, svc, "port", &s->port);
	if (rc == DRV_OK)
		rc = get_u32(e, svc, "stop_grace_ms", &s->stop_grace_ms);
	if (rc == DRV_OK)
		rc = get_str(e, svc, "user", &s->user);
	if (rc == DRV_OK)
		rc = get_str(e, svc, "group", &s->group);
	if (rc == DRV_OK)
		rc = get_strv(e, svc, "capabilities", &s->capabilities, &s->n_capabilities);
	if (rc == DRV_OK)
		rc = get_bool(e, svc, "keep_setid", &s->keep_setid);
	return rc;
}

static int get_hook(struct perr *e, json_t *root, Drover__Instruction *ins)
{
	static const char *const keys[] = {"name", "run",   "env", "timeout_ms",
	                                   "user", "group", NULL};
	json_t *h = json_object_get(root, "hook");
	int rc;

	if (h == NULL)
		return DRV_OK;
	rc = check_keys(e, h, "hook", keys);
	if (rc != DRV_OK)
		return rc;
	ins->hook = malloc(sizeof(*ins->hook));
	if (ins->hook == NULL)
		return DRV_ENOMEM;
	drover__hook__init(ins->hook);
	rc = get_str(e, h, "name", &ins->hook->name);
	if (rc == DRV_OK)
		rc = get_strv(e, h, "run", &ins->hook->run, &ins->hook->n_run);
	if (rc == DRV_OK)
		rc = get_env(e, h, "env", &ins->hook->env, &ins->hook->n_env);
	if (rc == DRV_OK)
		rc = get_u32(e, h, "timeout_ms", &ins->hook->timeout_ms);
	if (rc == DRV_OK)
		rc = get_str(e, h, "user", &ins->hook->user);
	if (rc == DRV_OK)
		rc = get_str(e, h, "group", &ins->hook->group);
	return rc;
}

static int get_top(struct perr *e, json_t *root, Drover__Instruction *ins)
{
	static const char *const keys[] = {"action",      "step_id", "deployment_id", "seq",
	                                   "deadline_ms", "service", "hook",          NULL};
	static const char *const actions[] = {"",         "prestage",          "start",
	                                      "stop",     "activate_previous", "health_check",
	                                      "run_hook", "finalize",          NULL};
	json_t *seq = json_object_get(root, "seq");
	int rc, act = 0;

	rc = check_keys(e, root, "the instruction", keys);
	if (rc == DRV_OK)
		rc = get_enum(e, root, "action", actions, &act);
	if (rc == DRV_OK && act == 0)
		rc = fail(e, "'action' is required (prestage, start, stop, activate_previous,"
		             " health_check, run_hook, finalize)");
	ins->action = (Drover__Action)act;
	if (rc == DRV_OK)
		rc = get_str(e, root, "step_id", &ins->step_id);
	if (rc == DRV_OK)
		rc = get_str(e, root, "deployment_id", &ins->deployment_id);
	if (rc == DRV_OK)
		rc = get_u32(e, root, "deadline_ms", &ins->step_deadline_ms);
	if (rc == DRV_OK && seq != NULL) {
		if (!json_is_integer(seq) || json_integer_value(seq) < 1)
			rc = fail(e, "'seq' must be a positive integer");
		else
			ins->seq = (uint64_t)json_integer_value(seq);
	}
	if (rc == DRV_OK)
		rc = get_service(e, root, ins);
	if (rc == DRV_OK)
		rc = get_hook(e, root, ins);
	return rc;
}

static int default_ids(Drover__Instruction *ins)
{
	if (ins->step_id == protobuf_c_empty_string || ins->step_id == NULL) {
		char buf[64];
		snprintf(buf, sizeof(buf), "run-step-%d-%lld", (int)getpid(),
		         (long long)drv_wall_ms());
		ins->step_id = strdup(buf);
		if (ins->step_id == NULL)
			return DRV_ENOMEM;
	}
	if (ins->deployment_id == protobuf_c_empty_string || ins->deployment_id == NULL) {
		ins->deployment_id = strdup("local");
		if (ins->deployment_id == NULL)
			return DRV_ENOMEM;
	}
	if (ins->seq == 0)
		ins->seq = 1;
	return DRV_OK;
}

int run_step_parse(const char *json, size_t len, const char *where, Drover__Instruction **out,
                   char *err, size_t err_size)
{
	struct perr e = {.buf = err, .size = err_size, .where = where};
	Drover__Instruction *ins;
	json_error_t jerr;
	json_t *root;
	int rc;

	if (len > RUN_STEP_MAX)
		return fail(&e, "larger than %u bytes", RUN_STEP_MAX);
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(err, err_size, "%s:%d:%d: %s", where, jerr.line, jerr.column, jerr.text);
		return DRV_EDECODE;
	}
	ins = malloc(sizeof(*ins));
	if (ins == NULL) {
		json_decref(root);
		return DRV_ENOMEM;
	}
	drover__instruction__init(ins);
	rc = get_top(&e, root, ins);
	if (rc == DRV_OK)
		rc = default_ids(ins);
	json_decref(root);
	if (rc != DRV_OK) {
		if (rc == DRV_ENOMEM)
			snprintf(err, err_size, "%s: out of memory", where);
		drover__instruction__free_unpacked(ins, NULL);
		return rc;
	}
	*out = ins;
	return DRV_OK;
}

/* --- output --- */

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t out_cond = PTHREAD_COND_INITIALIZER;
static int final_result;

static json_t *release_json(const Drover__Release *r)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:i, s:s}", "service", r->service,
	                 "version", r->version, "digest", r->digest, "state",
	                 drv_release_state_name(r->state), "previous_version", r->previous_version,
	                 "previous_digest", r->previous_digest, "healthy", r->healthy, "port",
	                 (int)r->port, "slot", r->slot);
}

static json_t *releases_json(Drover__Release *const *rel, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++)
		json_array_append_new(a, release_json(rel[i]));
	return a;
}

static void print_json(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (s != NULL) {
		pthread_mutex_lock(&out_lock);
		printf("%s\n", s);
		fflush(stdout);
		pthread_mutex_unlock(&out_lock);
	}
	free(s);
	json_decref(j);
}

static void on_report(const Drover__Report *r, void *arg)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:i, s:s, s:I, s:o}", "result",
	                      drv_step_result_name(r->result), "step_id", r->step_id,
	                      "deployment_id", r->deployment_id, "service", r->service, "seq",
	                      (json_int_t)r->instruction_seq, "message", r->message, "exit_code",
	                      r->exit_code, "output_tail", r->output_tail, "duration_ms",
	                      (json_int_t)r->duration_ms, "releases",
	                      releases_json(r->releases, r->n_releases));

	if (j != NULL && r->health != NULL)
		json_object_set_new(j, "health",
		                    json_pack("{s:b, s:I, s:s}", "healthy", r->health->healthy,
		                              "previous_state_ms",
		                              (json_int_t)r->health->previous_state_ms, "detail",
		                              r->health->detail));
	print_json(j);
	if (arg != NULL && (r->result == DROVER__STEP_RESULT__STEP_SUCCEEDED ||
	                    r->result == DROVER__STEP_RESULT__STEP_FAILED)) {
		pthread_mutex_lock(&out_lock);
		final_result = r->result;
		pthread_cond_broadcast(&out_cond);
		pthread_mutex_unlock(&out_lock);
	}
}

/* --- main --- */

struct opts {
	const char *file, *dir, *socket, *fetch_exe;
	char *state, *cache, *releases, *logs;
	int insecure, status;
	long watch_ms, stall_s;
	unsigned long log_max;
	unsigned log_keep;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {{"dir", required_argument, NULL, 'd'},
	                                   {"state-dir", required_argument, NULL, 's'},
	                                   {"cache-dir", required_argument, NULL, 'c'},
	                                   {"releases-dir", required_argument, NULL, 'r'},
	                                   {"log-dir", required_argument, NULL, 'l'},
	                                   {"docker-socket", required_argument, NULL, 'k'},
	                                   {"insecure-registry", no_argument, NULL, 'i'},
	                                   {"watch", required_argument, NULL, 'w'},
	                                   {"status", no_argument, NULL, 'S'},
	                                   {"log-level", required_argument, NULL, 'L'},
	                                   {"pull-stall-s", required_argument, NULL, 'P'},
	                                   {"log-max-bytes", required_argument, NULL, 'M'},
	                                   {"log-keep", required_argument, NULL, 'K'},
	                                   {"fetch-exe", required_argument, NULL, 'F'},
	                                   {"help", no_argument, NULL, 'h'},
	                                   {NULL, 0, NULL, 0}};
	enum drv_log_level lvl;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': o->dir = optarg; break;
		case 's': o->state = optarg; break;
		case 'c': o->cache = optarg; break;
		case 'r': o->releases = optarg; break;
		case 'l': o->logs = optarg; break;
		case 'k': o->socket = optarg; break;
		case 'i': o->insecure = 1; break;
		case 'S': o->status = 1; break;
		case 'w': o->watch_ms = strtol(optarg, NULL, 10); break;
		case 'P': o->stall_s = strtol(optarg, NULL, 10); break;
		case 'M': o->log_max = strtoul(optarg, NULL, 10); break;
		case 'K': o->log_keep = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'F': o->fetch_exe = optarg; break;
		case 'L':
			if (drv_log_parse_level(optarg, &lvl) != DRV_OK)
				return 2;
			drv_log_set_level(lvl);
			break;
		case 'h': fputs(usage, stdout); return 0;
		default: return 2;
		}
	}
	if (optind < argc)
		o->file = argv[optind++];
	if (optind != argc || (o->file == NULL && !o->status))
		return 2;
	return -1;
}

static char *under(const char *dir, const char *sub, char *given)
{
	char *p;

	if (given != NULL || dir == NULL)
		return given ? strdup(given) : NULL;
	if (asprintf(&p, "%s/%s", dir, sub) < 0)
		return NULL;
	return p;
}

static int load(const char *file, Drover__Instruction **ins)
{
	char err[512], *buf = NULL;
	size_t len = 0;
	int rc;

	if (strcmp(file, "-") == 0) {
		size_t cap = 0, n;
		char chunk[4096];
		while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0 && len <= RUN_STEP_MAX) {
			if (len + n + 1 > cap) {
				char *nb = realloc(buf, cap = (len + n + 1) * 2);
				if (nb == NULL) {
					free(buf);
					return 1;
				}
				buf = nb;
			}
			memcpy(buf + len, chunk, n);
			len += n;
		}
		rc = buf ? DRV_OK : DRV_EINVAL;
	} else {
		rc = drv_read_file(file, RUN_STEP_MAX, &buf, &len);
	}
	if (rc != DRV_OK) {
		fprintf(stderr, "run-step: cannot read %s: %s\n", file, drv_strerror(rc));
		free(buf);
		return 2;
	}
	rc = run_step_parse(buf, len, file, ins, err, sizeof(err));
	free(buf);
	if (rc != DRV_OK) {
		fprintf(stderr, "run-step: %s\n", err);
		return 2;
	}
	return 0;
}

static int run(struct executor *ex, const struct opts *o)
{
	Drover__Instruction *ins = NULL;
	int rc = o->file ? load(o->file, &ins) : 0;
	struct timespec ts;

	if (rc != 0)
		return rc;
	if (ins != NULL) {
		final_result = 0;
		if (executor_run(ex, ins, on_report, (void *)1) != DRV_OK) {
			fprintf(stderr, "run-step: the executor refused the instruction\n");
			drover__instruction__free_unpacked(ins, NULL);
			return 2;
		}
		drover__instruction__free_unpacked(ins, NULL);
		pthread_mutex_lock(&out_lock);
		while (final_result == 0)
			pthread_cond_wait(&out_cond, &out_lock);
		pthread_mutex_unlock(&out_lock);
		executor_drain(ex);
	}
	if (o->watch_ms > 0) {
		ts.tv_sec = o->watch_ms / 1000;
		ts.tv_nsec = (o->watch_ms % 1000) * 1000000;
		while (nanosleep(&ts, &ts) != 0)
			;
	}
	if (o->status) {
		Drover__Release **rel;
		size_t n;
		if (executor_releases(ex, &rel, &n) == DRV_OK) {
			print_json(json_pack("{s:s, s:o}", "result", "releases", "releases",
			                     releases_json(rel, n)));
			executor_releases_free(rel, n);
		}
	}
	return ins == NULL || final_result == DROVER__STEP_RESULT__STEP_SUCCEEDED ? 0 : 1;
}

int run_step_main(int argc, char **argv)
{
	struct opts o = {0};
	struct executor *ex = NULL;
	int rc = parse_opts(argc, argv, &o);

	if (rc >= 0) {
		if (rc == 2)
			fputs(usage, stderr);
		return rc;
	}
	struct executor_config cfg = {
	        .state_dir = o.state = under(o.dir, "state", o.state),
	        .cache_dir = o.cache = under(o.dir, "cache", o.cache),
	        .releases_dir = o.releases = under(o.dir, "releases", o.releases),
	        .log_dir = o.logs = under(o.dir, "log", o.logs),
	        .docker_socket = o.socket,
	        .insecure_registry = o.insecure,
	        .agent_id = "run-step",
	        .events = on_report,
	        .events_arg = NULL,
	        .pull_stall_s = o.stall_s,
	        /* as the agent does (fetch_helper.h) */
	        .fetch_exe = o.fetch_exe != NULL ? o.fetch_exe : "/proc/self/exe",
	        .log_max_bytes = o.log_max,
	        .log_keep = o.log_keep,
	};
	if (!cfg.state_dir || !cfg.cache_dir || !cfg.releases_dir || !cfg.log_dir) {
		fprintf(stderr, "run-step: give --dir DIR or all of --state-dir, --cache-dir,"
		                " --releases-dir, --log-dir\n");
		rc = 2;
	} else if ((rc = executor_new(&cfg, &ex)) != DRV_OK) {
		fprintf(stderr, "run-step: cannot start the executor: %s\n", drv_strerror(rc));
		rc = 1;
	} else {
		rc = run(ex, &o);
	}
	executor_free(ex);
	free(o.state);
	free(o.cache);
	free(o.releases);
	free(o.logs);
	return rc;
}
