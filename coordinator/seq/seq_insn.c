/*
 * seq_insn.c: turning SEND and TRAFFIC actions into what the edges need:
 * the protobuf Instruction (service spec or hook, pinned by digest) and the
 * HAProxy servers with their weights.
 *
 * The Instruction points into the plan and the sequencer (strings, argv
 * arrays) and owns only its own scaffolding: one allocation plus arrays,
 * freed by drv_seq_instruction_free (never by protobuf-c's free_unpacked).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "seq_int.h"

#define HOOK_EXTRA_ENV 8

struct insn {
	Drover__Instruction ins; /* first: the pointer handed out */
	Drover__ServiceSpec spec;
	Drover__ImageRef image;
	Drover__HealthCheck health;
	Drover__Hook hook;
	Drover__SystemdOptions systemd;
	Drover__KeyValue *kv;
	Drover__KeyValue **kvp;
	Drover__File *files;
	Drover__File **filep;
	char step_id[DRV_SEQ_STEP_ID_MAX];
	char percent[16];
	char hook_name[DRV_PLAN_NAME_MAX + 16];
};

static int fill_env(struct insn *b, const struct drv_plan_kv *env, size_t n, size_t extra)
{
	b->kv = calloc(n + extra + 1, sizeof(*b->kv));
	b->kvp = calloc(n + extra + 1, sizeof(*b->kvp));
	if (b->kv == NULL || b->kvp == NULL)
		return DRV_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		drover__key_value__init(&b->kv[i]);
		b->kv[i].key = env[i].key;
		b->kv[i].value = env[i].value;
		b->kvp[i] = &b->kv[i];
	}
	return DRV_OK;
}

static void add_env(struct insn *b, size_t *n, const char *key, const char *value)
{
	drover__key_value__init(&b->kv[*n]);
	b->kv[*n].key = (char *)key;
	b->kv[*n].value = (char *)value;
	b->kvp[*n] = &b->kv[*n];
	(*n)++;
}

static void fill_health(struct insn *b, const struct drv_plan_service *ps,
                        const struct drv_seq_action *a)
{
	const struct drv_plan_health *h = &ps->health;
	static const Drover__HealthKind kinds[] = {
	        DROVER__HEALTH_KIND__HEALTH_NONE, DROVER__HEALTH_KIND__HEALTH_HTTP,
	        DROVER__HEALTH_KIND__HEALTH_TCP, DROVER__HEALTH_KIND__HEALTH_EXEC};

	drover__health_check__init(&b->health);
	b->health.kind = kinds[h->kind];
	b->health.host = h->host ? h->host : "";
	/* in the other blue-green slot the check follows the service's port */
	b->health.port = h->port == ps->port && a->port != 0 ? a->port : h->port;
	b->health.path = h->path ? h->path : "";
	b->health.status_min = h->status_min;
	b->health.status_max = h->status_max;
	b->health.body_match = h->body ? h->body : "";
	b->health.n_exec = h->exec.n;
	b->health.exec = h->exec.v;
	b->health.initial_delay_ms = (uint32_t)h->initial_delay_ms;
	b->health.interval_ms = (uint32_t)h->interval_ms;
	b->health.timeout_ms = (uint32_t)h->timeout_ms;
	b->health.healthy_threshold = h->healthy_threshold;
	b->health.unhealthy_threshold = h->unhealthy_threshold;
	b->health.deadline_ms = (uint32_t)h->deadline_ms;
	b->spec.health = &b->health;
}

static int fill_files(struct insn *b, const struct drv_plan_service *ps)
{
	b->files = calloc(ps->n_files + 1, sizeof(*b->files));
	b->filep = calloc(ps->n_files + 1, sizeof(*b->filep));
	if (b->files == NULL || b->filep == NULL)
		return DRV_ENOMEM;
	for (size_t i = 0; i < ps->n_files; i++) {
		drover__file__init(&b->files[i]);
		b->files[i].path = ps->files[i].path;
		b->files[i].content.data = (uint8_t *)ps->files[i].content;
		b->files[i].content.len = strlen(ps->files[i].content);
		b->files[i].mode = ps->files[i].mode;
		b->filep[i] = &b->files[i];
	}
	b->spec.n_files = ps->n_files;
	b->spec.files = b->filep;
	return DRV_OK;
}

/* driver systemd: the unit options (empty strings and 0 are the agent's
 * defaults). */
static void fill_systemd(struct insn *b, const struct drv_plan_systemd *sd)
{
	static const char *const kill[] = {"", "mixed", "process"};
	static const char *const protect[] = {"", "no", "yes", "strict"};

	drover__systemd_options__init(&b->systemd);
	b->systemd.kill_mode = (char *)kill[sd->kill_mode % 3];
	b->systemd.protect_system = (char *)protect[sd->protect_system % 4];
	b->systemd.memory_max = sd->memory_max;
	b->systemd.cpu_quota = sd->cpu_quota;
	b->systemd.tasks_max = sd->tasks_max;
	b->systemd.private_tmp = (char *)(sd->private_tmp < 0 ? ""
	                                  : sd->private_tmp   ? "yes"
	                                                      : "no");
	b->systemd.no_new_privileges = (char *)(sd->no_new_privileges < 0 ? ""
	                                        : sd->no_new_privileges   ? "yes"
	                                                                  : "no");
	b->spec.systemd = &b->systemd;
}

/* PRESTAGE and START carry everything; the others name the service and slot. */
static int fill_spec(struct insn *b, const struct drv_seq_action *a,
                     const struct drv_plan_service *ps)
{
	bool full = a->step == DRV_SEQ_STEP_PRESTAGE || a->step == DRV_SEQ_STEP_START;
	size_t n = ps->n_env;
	int rc;

	drover__service_spec__init(&b->spec);
	b->spec.name = ps->name;
	b->spec.version = ps->version;
	b->spec.driver = ps->driver == DRV_DRIVER_CONTAINER ? DROVER__DRIVER__DRIVER_CONTAINER
	                 : ps->driver == DRV_DRIVER_SYSTEMD ? DROVER__DRIVER__DRIVER_SYSTEMD
	                                                    : DROVER__DRIVER__DRIVER_EXEC;
	if (ps->driver == DRV_DRIVER_SYSTEMD)
		fill_systemd(b, &ps->systemd);
	b->spec.isolation = ps->chroot ? DROVER__ISOLATION__ISOLATION_CHROOT
	                               : DROVER__ISOLATION__ISOLATION_NONE;
	b->spec.slot = (char *)a->slot;
	b->spec.port = a->port;
	b->spec.stop_grace_ms = (uint32_t)ps->stop_grace_ms;
	b->spec.user = ps->privs.user ? ps->privs.user : "";
	b->spec.group = ps->privs.group ? ps->privs.group : "";
	b->spec.n_capabilities = ps->privs.caps.n;
	b->spec.capabilities = ps->privs.caps.v;
	b->spec.keep_setid = ps->privs.keep_setid;
	b->spec.reload_on_config = ps->reload_on_config;
	fill_health(b, ps, a);
	b->ins.service = &b->spec;
	if (!full)
		return DRV_OK;
	drover__image_ref__init(&b->image);
	b->image.reference = ps->image;
	b->image.digest = ps->digest;
	b->spec.image = &b->image;
	b->spec.n_command = ps->command.n;
	b->spec.command = ps->command.v;
	rc = fill_env(b, ps->env, ps->n_env, 0);
	if (rc != DRV_OK)
		return rc;
	b->spec.n_env = n;
	b->spec.env = b->kvp;
	return fill_files(b, ps);
}

static int fill_hook(struct insn *b, const struct drv_seq *s, const struct drv_seq_action *a)
{
	const struct drv_plan_hook *h = seq_plan_hook(
	        s, a->step,
	        a->step == DRV_SEQ_STEP_TRAFFIC ? (uint32_t)a->service : (uint32_t)a->hook);
	const struct drv_plan_service *ps = a->service >= 0 ? &s->plan->services[a->service] : NULL;
	size_t n = h != NULL ? h->n_env : 0;

	if (h == NULL || fill_env(b, h->env, h->n_env, HOOK_EXTRA_ENV) != DRV_OK)
		return h == NULL ? DRV_EINVAL : DRV_ENOMEM;
	drover__hook__init(&b->hook);
	snprintf(b->hook_name, sizeof(b->hook_name), "%s", ps != NULL ? "traffic" : h->name);
	b->hook.name = b->hook_name;
	b->hook.n_run = a->step == DRV_SEQ_STEP_DOWN ? h->down.n : h->run.n;
	b->hook.run = a->step == DRV_SEQ_STEP_DOWN ? h->down.v : h->run.v;
	b->hook.timeout_ms = (uint32_t)h->timeout_ms;
	b->hook.user = h->privs.user ? h->privs.user : "";
	b->hook.group = h->privs.group ? h->privs.group : "";
	add_env(b, &n, "DROVER_DEPLOYMENT", s->plan->deployment);
	add_env(b, &n, "DROVER_VERSION", s->plan->version);
	add_env(b, &n, "DROVER_DEPLOYMENT_ID", s->id);
	if (ps != NULL) {
		add_env(b, &n, "DROVER_SERVICE", ps->name);
		if (ps->strategy.traffic.backend != NULL)
			add_env(b, &n, "DROVER_BACKEND", ps->strategy.traffic.backend);
		if (ps->strategy.type == DRV_STRATEGY_BLUEGREEN) {
			add_env(b, &n, "DROVER_TARGET", a->to_new ? "new" : "old");
			if (seq_sets(&s->svcs[a->service])) /* the set that gets the traffic */
				add_env(b, &n, "DROVER_SET",
				        seq_set_name(&s->svcs[a->service], a->to_new));
		} else {
			snprintf(b->percent, sizeof(b->percent), "%d", a->percent);
			add_env(b, &n, "DROVER_PERCENT", a->percent >= 0 ? b->percent : "even");
		}
	}
	b->hook.n_env = n;
	b->hook.env = b->kvp;
	b->ins.hook = &b->hook;
	return DRV_OK;
}

void drv_seq_instruction_free(Drover__Instruction *ins)
{
	struct insn *b = (struct insn *)ins;

	if (b == NULL)
		return;
	free(b->kv);
	free(b->kvp);
	free(b->files);
	free(b->filep);
	free(b);
}

int drv_seq_instruction(const struct drv_seq *s, const struct drv_seq_action *a,
                        Drover__Instruction **out)
{
	struct insn *b;
	int rc;

	if (a->kind != DRV_SEQ_ACT_SEND ||
	    (a->action != DROVER__ACTION__ACTION_RUN_HOOK &&
	     (a->service < 0 || (size_t)a->service >= s->plan->n_services)))
		return DRV_EINVAL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return DRV_ENOMEM;
	drover__instruction__init(&b->ins);
	snprintf(b->step_id, sizeof(b->step_id), "%s", a->id);
	b->ins.target_agent = (char *)a->agent;
	b->ins.deployment_id = (char *)s->id;
	b->ins.step_id = b->step_id;
	b->ins.action = (Drover__Action)a->action;
	b->ins.step_deadline_ms = (uint32_t)a->step_deadline_ms;
	if (a->action == DROVER__ACTION__ACTION_RUN_HOOK)
		rc = fill_hook(b, s, a);
	else
		rc = fill_spec(b, a, &s->plan->services[a->service]);
	if (rc != DRV_OK) {
		drv_seq_instruction_free(&b->ins);
		return rc;
	}
	*out = &b->ins;
	return DRV_OK;
}

/* ---- HAProxy servers ---- */

static void server_name(char *buf, size_t cap, const char *tpl, const char *host, const char *slot,
                        const char *set)
{
	size_t n = 0;

	while (*tpl != '\0' && n + 1 < cap) {
		const char *with = NULL;

		if (strncmp(tpl, "{host}", 6) == 0)
			with = host, tpl += 6;
		else if (strncmp(tpl, "{slot}", 6) == 0)
			with = slot, tpl += 6;
		else if (strncmp(tpl, "{set}", 5) == 0)
			with = set, tpl += 5;
		if (with == NULL) {
			buf[n++] = *tpl++;
			continue;
		}
		n += (size_t)snprintf(buf + n, cap - n, "%s", with);
		if (n >= cap)
			n = cap - 1;
	}
	buf[n] = '\0';
}

static bool host_is_new(const struct seq_host *h)
{
	return h->st[K_START] != ST_NONE && h->st[K_ROLLBACK] != ST_OK;
}

/* Weights (0..256) giving the new hosts `percent` of the requests. */
static void canary_weights(int percent, uint32_t n_new, uint32_t n_old, uint32_t *w_new,
                           uint32_t *w_old)
{
	double share_new, share_old, top;

	*w_new = *w_old = 100;
	if (percent < 0 || n_new == 0 || n_old == 0)
		return;
	if (percent == 0 || percent == 100) {
		*w_new = percent == 100 ? 100 : 0;
		*w_old = percent == 100 ? 0 : 100;
		return;
	}
	share_new = percent / (double)n_new;
	share_old = (100 - percent) / (double)n_old;
	top = share_new > share_old ? share_new : share_old;
	*w_new = (uint32_t)(256.0 * share_new / top + 0.5);
	*w_old = (uint32_t)(256.0 * share_old / top + 0.5);
	*w_new = *w_new == 0 ? 1 : *w_new;
	*w_old = *w_old == 0 ? 1 : *w_old;
}

int drv_seq_traffic_servers(const struct drv_seq *s, const struct drv_seq_action *a,
                            drv_seq_server_fn fn, void *arg)
{
	const struct seq_svc *v;
	const char *tpl;
	char name[256];
	uint32_t n_new = 0, w_new, w_old;

	if (a->kind != DRV_SEQ_ACT_TRAFFIC || a->service < 0 ||
	    (size_t)a->service >= s->plan->n_services)
		return DRV_EINVAL;
	v = &s->svcs[a->service];
	tpl = v->ps->strategy.traffic.server;
	if (v->ps->strategy.traffic.kind != DRV_TRAFFIC_BALANCER || tpl == NULL)
		return DRV_EINVAL;
	for (uint32_t i = 0; i < v->n; i++)
		n_new += host_is_new(&v->hosts[i]);
	canary_weights(a->percent, n_new, v->n - n_new, &w_new, &w_old);
	for (uint32_t i = 0; i < v->n; i++) {
		const struct seq_host *h = &v->hosts[i];
		const char *agent = seq_agent(s, h->agent);

		if (seq_sets(v)) {
			server_name(name, sizeof(name), tpl, agent, "", seq_set_name(v, true));
			fn(arg, name, a->to_new ? 100 : 0, a->to_new);
			continue;
		}
		if (v->ps->strategy.type != DRV_STRATEGY_BLUEGREEN) {
			/* a canary's old hosts carried traffic all along */
			server_name(name, sizeof(name), tpl, agent, "", "");
			fn(arg, name, host_is_new(h) ? w_new : w_old,
			   host_is_new(h) && a->to_new && a->percent > 0);
			continue;
		}
		server_name(name, sizeof(name), tpl, agent, seq_is_new_green(h) ? "green" : "blue",
		            "");
		fn(arg, name, a->to_new ? 100 : 0, a->to_new);
		server_name(name, sizeof(name), tpl, agent, seq_is_new_green(h) ? "blue" : "green",
		            "");
		fn(arg, name, a->to_new ? 0 : 100, !a->to_new);
	}
	/* across sets: the old set's servers take what the new set gives up */
	for (uint32_t j = 0; seq_sets(v) && j < v->live.n; j++) {
		server_name(name, sizeof(name), tpl, seq_agent(s, v->live.agents[j]), "",
		            seq_set_name(v, false));
		fn(arg, name, a->to_new ? 0 : 100, !a->to_new);
	}
	return DRV_OK;
}
