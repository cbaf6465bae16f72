/*
 * sequencer.c: the deployment state machine's core: targets, step ids,
 * events (reports, ticks, operator verbs), deadlines and the phases
 * prestage -> pre -> migrate -> tiers -> post -> finalize.
 *
 * Every call sets s->now and s->out, applies the event, then runs
 * seq_drive() until nothing changes: each phase and each service looks at
 * what is outstanding and starts what comes next. Transitions are logged
 * as LOG actions (bgpd's change_state: one line per transition, with why).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "seq_int.h"

static const char *const state_names[] = {
        [DRV_SEQ_PENDING] = "pending",
        [DRV_SEQ_PRESTAGE] = "prestage",
        [DRV_SEQ_PRE] = "pre",
        [DRV_SEQ_MIGRATE] = "migrate",
        [DRV_SEQ_TIERS] = "tiers",
        [DRV_SEQ_POST] = "post",
        [DRV_SEQ_FINALIZE] = "finalize",
        [DRV_SEQ_ROLLBACK] = "rollback",
        [DRV_SEQ_SUCCEEDED] = "succeeded",
        [DRV_SEQ_FAILED] = "failed",
        [DRV_SEQ_ROLLED_BACK] = "rolled_back",
        [DRV_SEQ_ABORTED] = "aborted",
};

const char *drv_seq_state_name(enum drv_seq_state st)
{
	return (unsigned)st <= DRV_SEQ_ABORTED ? state_names[st] : "unknown";
}

bool drv_seq_state_terminal(enum drv_seq_state st)
{
	return st >= DRV_SEQ_SUCCEEDED;
}

/* ---- actions ---- */

void drv_seq_actions_clear(struct drv_seq_actions *a)
{
	a->n = 0;
	a->persist = false;
}

void drv_seq_actions_free(struct drv_seq_actions *a)
{
	free(a->v);
	memset(a, 0, sizeof(*a));
}

struct drv_seq_action *seq_act(struct drv_seq *s, enum drv_seq_action_kind kind)
{
	struct drv_seq_actions *o = s->out;
	struct drv_seq_action *a;

	s->changed = true;
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		struct drv_seq_action *v = realloc(o->v, cap * sizeof(*v));

		if (v == NULL) {
			s->oom = true;
			return NULL;
		}
		o->v = v;
		o->cap = cap;
	}
	o->persist = true;
	a = &o->v[o->n++];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->service = -1;
	a->hook = -1;
	a->percent = -1;
	a->slot = "";
	return a;
}

void seq_log(struct drv_seq *s, const char *fmt, ...)
{
	struct drv_seq_action *a = seq_act(s, DRV_SEQ_ACT_LOG);
	va_list ap;

	if (a == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(a->text, sizeof(a->text), fmt, ap);
	va_end(ap);
}

void seq_notify(struct drv_seq *s, enum drv_plan_event ev, const char *fmt, ...)
{
	struct drv_seq_action *a = seq_act(s, DRV_SEQ_ACT_NOTIFY);
	va_list ap;

	if (a == NULL)
		return;
	a->event = ev;
	va_start(ap, fmt);
	vsnprintf(a->text, sizeof(a->text), fmt, ap);
	va_end(ap);
}

void seq_reason(struct drv_seq *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
	va_end(ap);
}

void seq_set_state(struct drv_seq *s, enum drv_seq_state st, const char *why)
{
	seq_log(s, "state %s -> %s: %s", drv_seq_state_name(s->state), drv_seq_state_name(st), why);
	s->state = (uint8_t)st;
	s->hook = 0;
	s->hook_wait = false;
	if (drv_seq_state_terminal(st)) {
		s->ended_at = s->now;
		s->paused = false;
	}
}

/* ---- agents ---- */

static uint64_t str_hash(const char *p)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *p != '\0'; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ULL;
	}
	return h;
}

const char *seq_agent(const struct drv_seq *s, uint32_t idx)
{
	return idx < s->n_agents ? s->agents[idx] : "?";
}

int seq_agent_find(const struct drv_seq *s, const char *agent, uint32_t *out)
{
	uint32_t i;

	if (s->idx_cap == 0)
		return DRV_ENOENT;
	i = (uint32_t)(str_hash(agent) & (s->idx_cap - 1));
	while (s->agent_idx[i] != 0) {
		if (strcmp(s->agents[s->agent_idx[i] - 1], agent) == 0) {
			*out = s->agent_idx[i] - 1;
			return DRV_OK;
		}
		i = (i + 1) & (s->idx_cap - 1);
	}
	return DRV_ENOENT;
}

static int index_grow(struct drv_seq *s)
{
	uint32_t cap = s->idx_cap ? s->idx_cap * 2 : 64, *idx = calloc(cap, sizeof(*idx));

	if (idx == NULL)
		return DRV_ENOMEM;
	for (uint32_t a = 0; a < s->n_agents; a++) {
		uint32_t i = (uint32_t)(str_hash(s->agents[a]) & (cap - 1));

		while (idx[i] != 0)
			i = (i + 1) & (cap - 1);
		idx[i] = a + 1;
	}
	free(s->agent_idx);
	s->agent_idx = idx;
	s->idx_cap = cap;
	return DRV_OK;
}

int seq_agent_intern(struct drv_seq *s, const char *agent, uint32_t *out)
{
	char **v;

	if (seq_agent_find(s, agent, out) == DRV_OK)
		return DRV_OK;
	if (s->n_agents == s->cap_agents) {
		uint32_t cap = s->cap_agents ? s->cap_agents * 2 : 16;

		v = realloc(s->agents, cap * sizeof(*v));
		if (v == NULL)
			return DRV_ENOMEM;
		s->agents = v;
		s->cap_agents = cap;
	}
	s->agents[s->n_agents] = strdup(agent);
	if (s->agents[s->n_agents] == NULL)
		return DRV_ENOMEM;
	s->n_agents++;
	if (s->n_agents * 2 > s->idx_cap) {
		if (index_grow(s) != DRV_OK) { /* the rebuilt index includes the new agent */
			free(s->agents[--s->n_agents]);
			return DRV_ENOMEM;
		}
	} else {
		uint32_t i = (uint32_t)(str_hash(agent) & (s->idx_cap - 1));

		while (s->agent_idx[i] != 0)
			i = (i + 1) & (s->idx_cap - 1);
		s->agent_idx[i] = s->n_agents;
	}
	*out = s->n_agents - 1;
	return DRV_OK;
}

/* ---- creation and targets ---- */

static bool valid_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > DRV_SEQ_ID_MAX)
		return false;
	for (; *id != '\0'; id++) {
		if (!isalnum((unsigned char)*id) && strchr("._-", *id) == NULL)
			return false;
	}
	return true;
}

int drv_seq_new(const struct drv_plan *plan, const char *id, struct drv_seq **out)
{
	struct drv_seq *s;

	if (plan == NULL || id == NULL || !valid_id(id))
		return DRV_EINVAL;
	if (!drv_plan_pinned(plan))
		return DRV_ENODIGEST;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return DRV_ENOMEM;
	s->plan = plan;
	snprintf(s->id, sizeof(s->id), "%s", id);
	s->plan_hash = seq_plan_hash(plan);
	s->svcs = calloc(plan->n_services + 1, sizeof(*s->svcs));
	s->pre = calloc(plan->n_pre + 1, sizeof(*s->pre));
	s->mig = calloc(plan->n_migrations + 1, sizeof(*s->mig));
	s->post = calloc(plan->n_post + 1, sizeof(*s->post));
	if (s->svcs == NULL || s->pre == NULL || s->mig == NULL || s->post == NULL) {
		drv_seq_free(s);
		return DRV_ENOMEM;
	}
	for (size_t i = 0; i < plan->n_services; i++) {
		s->svcs[i].ps = &plan->services[i];
		s->svcs[i].index = (uint32_t)i;
	}
	s->rb_tier = -1;
	s->rb_mig_i = -1;
	*out = s;
	return DRV_OK;
}

static void hook_free(struct seq_hook *k)
{
	free(k->agents);
	free(k->st);
	free(k->st2);
}

void drv_seq_free(struct drv_seq *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; s->svcs != NULL && i < s->plan->n_services; i++) {
		free(s->svcs[i].hosts);
		hook_free(&s->svcs[i].traffic);
	}
	for (size_t i = 0; s->pre != NULL && i < s->plan->n_pre; i++)
		hook_free(&s->pre[i]);
	for (size_t i = 0; s->mig != NULL && i < s->plan->n_migrations; i++)
		hook_free(&s->mig[i]);
	for (size_t i = 0; s->post != NULL && i < s->plan->n_post; i++)
		hook_free(&s->post[i]);
	free(s->svcs);
	free(s->pre);
	free(s->mig);
	free(s->post);
	for (uint32_t i = 0; i < s->n_agents; i++)
		free(s->agents[i]);
	free(s->agents);
	free(s->agent_idx);
	free(s);
}

int drv_seq_add_host(struct drv_seq *s, size_t service, const char *agent, bool has_previous,
                     const char *previous_slot)
{
	struct seq_svc *v;
	struct seq_host *h;
	uint32_t idx;

	if (s->started || service >= s->plan->n_services || agent == NULL)
		return DRV_EINVAL;
	v = &s->svcs[service];
	if (v->n >= DRV_PLAN_MAX_HOSTS)
		return DRV_ETOOBIG;
	if (seq_agent_intern(s, agent, &idx) != DRV_OK)
		return DRV_ENOMEM;
	for (uint32_t i = 0; i < v->n; i++) {
		if (v->hosts[i].agent == idx)
			return DRV_EEXIST;
	}
	if (v->n == v->cap) {
		uint32_t cap = v->cap ? v->cap * 2 : 8;

		h = realloc(v->hosts, cap * sizeof(*h));
		if (h == NULL)
			return DRV_ENOMEM;
		v->hosts = h;
		v->cap = cap;
	}
	h = &v->hosts[v->n++];
	memset(h, 0, sizeof(*h));
	h->agent = idx;
	if (has_previous)
		h->flags |= HF_PREV;
	if (previous_slot != NULL && strcmp(previous_slot, "green") == 0)
		h->flags |= HF_PREV_GRN;
	return DRV_OK;
}

int seq_hook_add(struct seq_hook *k, uint32_t agent)
{
	for (uint32_t i = 0; i < k->n; i++) {
		if (k->agents[i] == agent)
			return DRV_EEXIST;
	}
	if (k->n == k->cap) {
		uint32_t cap = k->cap ? k->cap * 2 : 4;
		uint32_t *a = realloc(k->agents, cap * sizeof(*a));
		uint8_t *st, *st2;

		if (a == NULL)
			return DRV_ENOMEM;
		k->agents = a;
		st = realloc(k->st, cap);
		if (st == NULL)
			return DRV_ENOMEM;
		k->st = st;
		st2 = realloc(k->st2, cap);
		if (st2 == NULL)
			return DRV_ENOMEM;
		k->st2 = st2;
		k->cap = cap;
	}
	k->agents[k->n] = agent;
	k->st[k->n] = ST_NONE;
	k->st2[k->n] = ST_NONE;
	k->n++;
	return DRV_OK;
}

static struct seq_hook *hook_list(struct drv_seq *s, enum drv_seq_step_kind list, size_t index)
{
	const struct drv_plan *p = s->plan;

	switch (list) {
	case DRV_SEQ_STEP_PRE: return index < p->n_pre ? &s->pre[index] : NULL;
	case DRV_SEQ_STEP_UP:
	case DRV_SEQ_STEP_DOWN: return index < p->n_migrations ? &s->mig[index] : NULL;
	case DRV_SEQ_STEP_POST: return index < p->n_post ? &s->post[index] : NULL;
	case DRV_SEQ_STEP_TRAFFIC: return index < p->n_services ? &s->svcs[index].traffic : NULL;
	default: return NULL;
	}
}

int drv_seq_add_hook_host(struct drv_seq *s, enum drv_seq_step_kind list, size_t index,
                          const char *agent)
{
	struct seq_hook *k = s->started ? NULL : hook_list(s, list, index);
	uint32_t idx;

	if (k == NULL || agent == NULL)
		return DRV_EINVAL;
	if (seq_agent_intern(s, agent, &idx) != DRV_OK)
		return DRV_ENOMEM;
	return seq_hook_add(k, idx);
}

/* "web-2" < "web-10": digit runs compare by value. */
static int natural_cmp(const char *a, const char *b)
{
	while (*a != '\0' && *b != '\0') {
		if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
			size_t la, lb;
			int c;

			while (*a == '0' && isdigit((unsigned char)a[1]))
				a++;
			while (*b == '0' && isdigit((unsigned char)b[1]))
				b++;
			for (la = 0; isdigit((unsigned char)a[la]); la++)
				;
			for (lb = 0; isdigit((unsigned char)b[lb]); lb++)
				;
			if (la != lb)
				return la < lb ? -1 : 1;
			c = strncmp(a, b, la);
			if (c != 0)
				return c;
			a += la;
			b += lb;
			continue;
		}
		if (*a != *b)
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
		a++;
		b++;
	}
	return *a == *b ? 0 : *a == '\0' ? -1 : 1;
}

static const struct drv_seq *sort_seq; /* qsort has no context argument */

static int host_cmp(const void *x, const void *y)
{
	const struct seq_host *a = x, *b = y;
	int c = natural_cmp(sort_seq->agents[a->agent], sort_seq->agents[b->agent]);

	return c != 0 ? c : strcmp(sort_seq->agents[a->agent], sort_seq->agents[b->agent]);
}

/* The host of agent idx in v (hosts are sorted), or -1. */
static int32_t host_find(const struct drv_seq *s, const struct seq_svc *v, uint32_t idx)
{
	uint32_t lo = 0, hi = v->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = natural_cmp(s->agents[v->hosts[mid].agent], s->agents[idx]);

		if (c == 0)
			c = strcmp(s->agents[v->hosts[mid].agent], s->agents[idx]);
		if (c == 0)
			return (int32_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static bool hooks_ok(struct drv_seq *s, const struct seq_hook *k, const struct drv_plan_hook *h,
                     size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (k[i].n == 0) {
			snprintf(s->reason, sizeof(s->reason), "hook %s has no hosts", h[i].name);
			return false;
		}
	}
	return true;
}

/* Every service and hook needs hosts. */
static bool targets_ok(struct drv_seq *s)
{
	const struct drv_plan *p = s->plan;

	for (size_t i = 0; i < p->n_services; i++) {
		const char *what = NULL;

		if (s->svcs[i].n == 0)
			what = "service %s has no hosts";
		else if (p->services[i].strategy.traffic.kind == DRV_TRAFFIC_HOOK &&
		         s->svcs[i].traffic.n == 0)
			what = "the traffic hook of %s has no hosts";
		if (what != NULL) {
			snprintf(s->reason, sizeof(s->reason), what, p->services[i].name);
			return false;
		}
	}
	return hooks_ok(s, s->pre, p->pre, p->n_pre) &&
	       hooks_ok(s, s->mig, p->migrations, p->n_migrations) &&
	       hooks_ok(s, s->post, p->post, p->n_post);
}

/* ---- step ids ---- */

static const char *const step_kind_names[] = {
        [DRV_SEQ_STEP_PRESTAGE] = "prestage", [DRV_SEQ_STEP_START] = "start",
        [DRV_SEQ_STEP_ROLLBACK] = "rollback", [DRV_SEQ_STEP_FINALIZE] = "finalize",
        [DRV_SEQ_STEP_PRE] = "pre",           [DRV_SEQ_STEP_UP] = "up",
        [DRV_SEQ_STEP_DOWN] = "down",         [DRV_SEQ_STEP_POST] = "post",
        [DRV_SEQ_STEP_TRAFFIC] = "traffic",
};

/*
 * kind:a:b, with a generation in front for rollback and down
 * (rollback:GEN:SVC:HOST) and the operation in the middle for traffic
 * hooks (traffic:SVC:OP:HOST).
 */
void seq_step_id(const struct drv_seq *s, char *buf, enum drv_seq_step_kind kind, uint32_t a,
                 uint32_t b, uint32_t c)
{
	const char *k = step_kind_names[kind];

	if (kind == DRV_SEQ_STEP_ROLLBACK || kind == DRV_SEQ_STEP_DOWN)
		snprintf(buf, DRV_SEQ_STEP_ID_MAX, "%s:%s:%u:%u:%u", s->id, k, s->rb_gen, a, b);
	else if (kind == DRV_SEQ_STEP_TRAFFIC)
		snprintf(buf, DRV_SEQ_STEP_ID_MAX, "%s:%s:%u:%u:%u", s->id, k, a, c, b);
	else
		snprintf(buf, DRV_SEQ_STEP_ID_MAX, "%s:%s:%u:%u", s->id, k, a, b);
}

struct parsed_id {
	int kind; /* enum drv_seq_step_kind, or 100 metric / 101 traffic operation */
	uint32_t n[3];
	int count;
};

static int parse_id(const struct drv_seq *s, const char *id, struct parsed_id *out)
{
	size_t len = strlen(s->id), klen;
	const char *p = id;
	char *end;

	if (id == NULL || strncmp(id, s->id, len) != 0 || id[len] != ':')
		return DRV_EINVAL;
	p += len + 1;
	klen = strcspn(p, ":");
	out->kind = -1;
	for (int k = 0; k <= DRV_SEQ_STEP_TRAFFIC; k++) {
		if (strlen(step_kind_names[k]) == klen && strncmp(p, step_kind_names[k], klen) == 0)
			out->kind = k;
	}
	if (klen == 6 && strncmp(p, "metric", 6) == 0)
		out->kind = 100;
	if (out->kind < 0)
		return DRV_EINVAL;
	p += klen;
	for (out->count = 0; *p == ':' && out->count < 3; out->count++) {
		if (!isdigit((unsigned char)p[1]))
			return DRV_EINVAL;
		out->n[out->count] = (uint32_t)strtoul(p + 1, &end, 10);
		p = end;
	}
	if (*p != '\0')
		return DRV_EINVAL;
	if (out->kind == DRV_SEQ_STEP_TRAFFIC && out->count == 2)
		out->kind = 101;
	return DRV_OK;
}

/* ---- sending ---- */

bool seq_is_new_green(const struct seq_host *h)
{
	/* the new version goes to the slot that is not running */
	return (h->flags & HF_PREV) && !(h->flags & HF_PREV_GRN);
}

int64_t seq_budget(const struct seq_svc *v, int kind)
{
	const struct drv_plan_service *ps = v->ps;

	switch (kind) {
	case K_START:
	case K_ROLLBACK:
		return ps->stop_grace_ms + ps->health.initial_delay_ms + ps->health.deadline_ms;
	case K_FINALIZE: return ps->stop_grace_ms + DRV_SEQ_FINALIZE_MS;
	default: return 0;
	}
}

uint32_t seq_tier_of(const struct drv_seq *s, const struct seq_svc *v)
{
	(void)s;
	return (uint32_t)v->ps->tier;
}

static void start_slot(const struct seq_svc *v, const struct seq_host *h, struct drv_seq_action *a)
{
	if (v->ps->strategy.type != DRV_STRATEGY_BLUEGREEN) {
		a->port = v->ps->port;
		return;
	}
	a->slot = seq_is_new_green(h) ? "green" : "blue";
	a->port = seq_is_new_green(h) ? v->ps->strategy.green_port : v->ps->port;
}

void seq_emit_host(struct drv_seq *s, struct seq_svc *v, uint32_t hi, int kind)
{
	static const enum drv_seq_step_kind kinds[] = {DRV_SEQ_STEP_PRESTAGE, DRV_SEQ_STEP_START,
	                                               DRV_SEQ_STEP_ROLLBACK,
	                                               DRV_SEQ_STEP_FINALIZE};
	struct seq_host *h = &v->hosts[hi];
	struct drv_seq_action *a = seq_act(s, DRV_SEQ_ACT_SEND);

	if (a == NULL)
		return;
	a->step = kinds[kind];
	seq_step_id(s, a->id, a->step, v->index, hi, 0);
	a->agent = seq_agent(s, h->agent);
	a->service = (int)v->index;
	a->deadline = kind == K_PRESTAGE ? s->prestage_deadline : v->wave_deadline;
	a->step_deadline_ms =
	        kind == K_PRESTAGE ? s->plan->prestage_timeout_ms : seq_budget(v, kind);
	switch (kind) {
	case K_PRESTAGE:
		a->action = DROVER__ACTION__ACTION_PRESTAGE;
		start_slot(v, h, a);
		break;
	case K_START:
		a->action = DROVER__ACTION__ACTION_START;
		start_slot(v, h, a);
		break;
	case K_ROLLBACK:
		a->action = seq_rb_action(v, h, &a->slot);
		a->port = strcmp(a->slot, "green") == 0 ? v->ps->strategy.green_port : v->ps->port;
		break;
	case K_FINALIZE:
		a->action = DROVER__ACTION__ACTION_FINALIZE;
		start_slot(v, h, a);
		break;
	}
}

void seq_send_host(struct drv_seq *s, struct seq_svc *v, uint32_t hi, int kind)
{
	v->hosts[hi].st[kind] = ST_SENT;
	if (kind == K_PRESTAGE)
		s->prestage_inflight++;
	else
		v->inflight++;
	seq_emit_host(s, v, hi, kind);
}

void seq_wave_begin(struct drv_seq *s, struct seq_svc *v, int kind)
{
	int64_t base = s->now;

	/* a rollback may queue behind a start the agent is still running */
	if (kind == K_ROLLBACK && v->wave_deadline > base && v->wave_kind == K_START)
		base = v->wave_deadline;
	v->wave_kind = (uint8_t)kind;
	v->inflight = 0;
	v->wave_failed = 0;
	v->wave_deadline = base + seq_budget(v, kind) + DRV_SEQ_SLACK_MS;
	if (kind == K_START) {
		v->batch_start = v->cursor;
		v->wait = W_WAVE;
	}
	s->changed = true;
}

/* The hook of a RUN_HOOK step kind and index. */
const struct drv_plan_hook *seq_plan_hook(const struct drv_seq *s, enum drv_seq_step_kind kind,
                                          uint32_t idx)
{
	const struct drv_plan *p = s->plan;

	switch (kind) {
	case DRV_SEQ_STEP_PRE: return idx < p->n_pre ? &p->pre[idx] : NULL;
	case DRV_SEQ_STEP_UP:
	case DRV_SEQ_STEP_DOWN: return idx < p->n_migrations ? &p->migrations[idx] : NULL;
	case DRV_SEQ_STEP_POST: return idx < p->n_post ? &p->post[idx] : NULL;
	case DRV_SEQ_STEP_TRAFFIC:
		return idx < p->n_services ? &p->services[idx].strategy.traffic.hook : NULL;
	default: return NULL;
	}
}

/* RUN_HOOK of hook idx (pre, up, down, post) on its host j. */
void seq_emit_hook(struct drv_seq *s, enum drv_seq_step_kind kind, uint32_t idx, uint32_t j)
{
	const struct drv_plan_hook *h = seq_plan_hook(s, kind, idx);
	const struct seq_hook *k = hook_list(s, kind, idx);
	struct drv_seq_action *a = seq_act(s, DRV_SEQ_ACT_SEND);

	if (a == NULL)
		return;
	a->step = kind;
	seq_step_id(s, a->id, kind, idx, j, 0);
	a->agent = seq_agent(s, k->agents[j]);
	a->action = DROVER__ACTION__ACTION_RUN_HOOK;
	a->hook = (int)idx;
	a->step_deadline_ms = h->timeout_ms;
	a->deadline = kind == DRV_SEQ_STEP_DOWN ? s->rb_mig_deadline : s->hook_deadline;
}

/* The current traffic operation of v: a TRAFFIC action, or the traffic
 * hook's RUN_HOOK on every host still outstanding. */
void seq_emit_traffic(struct drv_seq *s, struct seq_svc *v)
{
	const struct drv_plan_traffic *t = &v->ps->strategy.traffic;
	struct drv_seq_action *a;

	for (uint32_t j = 0; t->kind == DRV_TRAFFIC_HOOK && j < v->traffic.n; j++) {
		if (v->traffic.st[j] != ST_SENT || (a = seq_act(s, DRV_SEQ_ACT_SEND)) == NULL)
			continue;
		a->step = DRV_SEQ_STEP_TRAFFIC;
		seq_step_id(s, a->id, DRV_SEQ_STEP_TRAFFIC, v->index, j, v->op_n);
		a->agent = seq_agent(s, v->traffic.agents[j]);
		a->action = DROVER__ACTION__ACTION_RUN_HOOK;
		a->service = (int)v->index;
		a->percent = v->op_percent;
		a->to_new = v->op_to_new;
		a->step_deadline_ms = t->hook.timeout_ms;
		a->deadline = v->op_deadline;
	}
	if (t->kind != DRV_TRAFFIC_HAPROXY || (a = seq_act(s, DRV_SEQ_ACT_TRAFFIC)) == NULL)
		return;
	snprintf(a->id, sizeof(a->id), "%s:traffic:%u:%u", s->id, v->index, v->op_n);
	a->service = (int)v->index;
	a->percent = v->op_percent;
	a->to_new = v->op_to_new;
	a->deadline = v->op_deadline;
}

void seq_traffic(struct drv_seq *s, struct seq_svc *v, int percent, bool to_new)
{
	const struct drv_plan_traffic *t = &v->ps->strategy.traffic;

	v->op = OP_TRAFFIC;
	v->op_n++;
	v->op_percent = percent;
	v->op_to_new = to_new;
	v->op_failed = false;
	v->op_deadline = s->now +
	                 (t->kind == DRV_TRAFFIC_HOOK ? t->hook.timeout_ms : t->timeout_ms) +
	                 DRV_SEQ_SLACK_MS;
	if (v->state == SVC_RUNNING)
		v->wait = W_OP;
	s->changed = true;
	if (t->kind == DRV_TRAFFIC_HOOK) {
		v->op_inflight = v->traffic.n;
		for (uint32_t j = 0; j < v->traffic.n; j++)
			v->traffic.st[j] = ST_SENT;
	}
	seq_emit_traffic(s, v);
}

void seq_emit_metric(struct drv_seq *s, struct seq_svc *v)
{
	struct drv_seq_action *a = seq_act(s, DRV_SEQ_ACT_METRIC);

	if (a == NULL)
		return;
	snprintf(a->id, sizeof(a->id), "%s:metric:%u:%u", s->id, v->index, v->op_n);
	a->service = (int)v->index;
	a->url = v->ps->strategy.metric_url;
	a->max = v->ps->strategy.metric_max;
	a->deadline = v->op_deadline;
}

void seq_metric(struct drv_seq *s, struct seq_svc *v)
{
	v->op = OP_METRIC;
	v->op_n++;
	v->op_failed = false;
	v->op_deadline = s->now + v->ps->strategy.metric_timeout_ms + DRV_SEQ_SLACK_MS;
	v->wait = W_OP;
	seq_emit_metric(s, v);
}

/* ---- service outcomes ---- */

void seq_svc_done(struct drv_seq *s, struct seq_svc *v)
{
	v->state = SVC_DONE;
	v->wait = W_NONE;
	if (v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN)
		v->finalize_at = s->now + v->ps->strategy.finalize_after_ms;
	seq_log(s, "service %s done: %u of %u hosts on %s%s", v->ps->name, v->ok, v->n,
	        v->ps->version, v->failed ? " (some failed within the budget)" : "");
}

static bool svc_active(const struct drv_seq *s, const struct seq_svc *v)
{
	if (s->state != DRV_SEQ_TIERS && s->state != DRV_SEQ_POST && s->state != DRV_SEQ_FINALIZE)
		return false;
	return v->state == SVC_RUNNING ||
	       (v->state == SVC_DONE && v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN &&
	        !v->fin_started);
}

void seq_host_failed(struct drv_seq *s, struct seq_svc *v, uint32_t hi, const char *why)
{
	const struct drv_plan_failure *f = &v->ps->failure;
	uint32_t total, batch, budget, size = v->cursor - v->batch_start;
	char buf[DRV_SEQ_TEXT_MAX];

	v->failed++;
	v->wave_failed++;
	s->failed_hosts++;
	seq_log(s, "host %s failed in %s: %s", seq_agent(s, v->hosts[hi].agent), v->ps->name,
	        why != NULL && why[0] ? why : "no reason given");
	if (!svc_active(s, v))
		return;
	total = drv_plan_amount_of(f->max_failed_hosts, v->n, false);
	batch = f->per_batch_set ? drv_plan_amount_of(f->max_failed_per_batch, size, false) : total;
	if (v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN)
		total = batch = 0; /* green is all or nothing */
	budget = s->plan->has_budget
	                 ? drv_plan_amount_of(s->plan->max_failed_hosts, s->total_hosts, false)
	                 : UINT32_MAX;
	if (v->failed <= total && v->wave_failed <= batch && s->failed_hosts <= budget)
		return;
	snprintf(buf, sizeof(buf), "%s %s (%.80s): failed hosts over the %s budget",
	         seq_agent(s, v->hosts[hi].agent),
	         ST_BAD(v->hosts[hi].st[K_START]) ? "failed" : "unhealthy",
	         why != NULL && why[0] ? why : "no reason given",
	         v->failed > total        ? "service's"
	         : v->wave_failed > batch ? "per-batch"
	                                  : "deployment's");
	seq_breach(s, v, buf);
}

/* ---- reports ---- */

static void wave_done(struct drv_seq *s, struct seq_svc *v)
{
	s->changed = true;
	if (v->wave_kind == K_START && v->state == SVC_RUNNING && v->wait == W_WAVE)
		v->wait = W_NONE;
	else if (v->wave_kind == K_FINALIZE) {
		v->finalized = true;
		seq_log(s, "service %s finalized%s", v->ps->name,
		        v->fin_failed ? " (some hosts did not confirm)" : "");
	}
}

/* One step of host hi of v ended (st: ST_OK, ST_FAILED or ST_TIMEOUT). */
static void svc_step_ended(struct drv_seq *s, struct seq_svc *v, uint32_t hi, int kind, int st,
                           const char *why)
{
	v->hosts[hi].st[kind] = (uint8_t)st;
	if (v->inflight > 0)
		v->inflight--;
	if (kind == K_START) {
		if (st == ST_OK)
			v->ok++;
		else
			seq_host_failed(s, v, hi, why);
	} else if (kind == K_ROLLBACK) {
		if (st == ST_OK)
			v->rb_ok++;
		else {
			v->rb_failed++;
			if (s->rb_failures++ == 0)
				s->rb_first_fail = v->hosts[hi].agent + 1;
			seq_log(s, "host %s did not roll back %s: %s",
			        seq_agent(s, v->hosts[hi].agent), v->ps->name,
			        st == ST_TIMEOUT ? "deadline passed"
			        : why            ? why
			                         : "failed");
		}
	} else if (kind == K_FINALIZE && st != ST_OK) {
		v->fin_failed++;
	}
	if (v->inflight == 0)
		wave_done(s, v);
}

static void prestage_ended(struct drv_seq *s, struct seq_svc *v, uint32_t hi, int st,
                           const char *why)
{
	char buf[DRV_SEQ_TEXT_MAX];

	v->hosts[hi].st[K_PRESTAGE] = (uint8_t)st;
	if (s->prestage_inflight > 0)
		s->prestage_inflight--;
	s->changed = true;
	if (st == ST_OK)
		return;
	snprintf(buf, sizeof(buf), "prestage of %s on %s %s: %.120s; no host was changed",
	         v->ps->name, seq_agent(s, v->hosts[hi].agent),
	         st == ST_TIMEOUT ? "timed out" : "failed", why ? why : "");
	seq_fail(s, buf);
}

static void op_complete(struct drv_seq *s, struct seq_svc *v, bool ok, const char *why)
{
	char buf[DRV_SEQ_TEXT_MAX];
	int op = v->op;

	v->op = OP_NONE;
	v->op_inflight = 0;
	s->changed = true;
	if (op == OP_METRIC && ok && v->metric > v->ps->strategy.metric_max) {
		snprintf(buf, sizeof(buf), "metric %g above its maximum %g", v->metric,
		         v->ps->strategy.metric_max);
		ok = false;
		why = buf;
	} else if (!ok) {
		snprintf(buf, sizeof(buf), "%s failed: %.150s",
		         op == OP_METRIC ? "metric check" : "traffic switch", why ? why : "");
		why = buf;
	}
	if (v->state == SVC_RUNNING && v->wait == W_OP) {
		v->wait = W_NONE;
		if (!ok)
			seq_breach(s, v, why);
	} else if (v->state == SVC_RB && !ok) {
		v->rb_failed++;
		s->rb_failures++;
		seq_log(s, "service %s: %s during rollback", v->ps->name, why);
	} else if (v->state == SVC_DONE && !ok) {
		seq_breach(s, v, why);
	}
}

static void hook_ended(struct drv_seq *s, struct seq_hook *k, uint32_t j, bool down, int st)
{
	if (down) {
		k->st2[j] = (uint8_t)st;
		if (s->rb_mig_inflight > 0)
			s->rb_mig_inflight--;
	} else {
		k->st[j] = (uint8_t)st;
		if (s->hook_inflight > 0)
			s->hook_inflight--;
		if (st != ST_OK)
			s->hook_failed++;
	}
	if (down && st != ST_OK && s->rb_failures++ == 0)
		s->rb_first_fail = k->agents[j] + 1;
	s->changed = true;
}

/* The hook list the running phase works through; false outside hook phases. */
static bool phase_hooks(const struct drv_seq *s, struct seq_hook **k,
                        const struct drv_plan_hook **h, size_t *n, enum drv_seq_step_kind *kind)
{
	const struct drv_plan *p = s->plan;

	switch (s->state) {
	case DRV_SEQ_PRE:
		*k = s->pre, *h = p->pre, *n = p->n_pre, *kind = DRV_SEQ_STEP_PRE;
		return true;
	case DRV_SEQ_MIGRATE:
		*k = s->mig, *h = p->migrations, *n = p->n_migrations, *kind = DRV_SEQ_STEP_UP;
		return true;
	case DRV_SEQ_POST:
		*k = s->post, *h = p->post, *n = p->n_post, *kind = DRV_SEQ_STEP_POST;
		return true;
	default: return false;
	}
}

static int report_hook(struct drv_seq *s, const struct parsed_id *id, uint32_t agent, int st)
{
	enum drv_seq_step_kind kind;
	const struct drv_plan_hook *h;
	struct seq_hook *k;
	size_t n;
	uint32_t idx = id->n[0], j = id->n[1];

	if (id->kind == DRV_SEQ_STEP_DOWN) {
		idx = id->n[1], j = id->n[2];
		if (id->count != 3 || idx >= s->plan->n_migrations || j >= s->mig[idx].n)
			return DRV_EINVAL;
		if (s->mig[idx].agents[j] != agent)
			return DRV_EINVAL;
		if (id->n[0] == s->rb_gen && s->rb_mig_wait && (int32_t)idx == s->rb_mig_i &&
		    s->mig[idx].st2[j] == ST_SENT)
			hook_ended(s, &s->mig[idx], j, true, st);
		return DRV_OK;
	}
	k = hook_list(s, (enum drv_seq_step_kind)id->kind, idx);
	if (id->count != 2 || k == NULL || j >= k->n)
		return DRV_EINVAL;
	if (k->agents[j] != agent)
		return DRV_EINVAL;
	if (phase_hooks(s, &k, &h, &n, &kind) && kind == (enum drv_seq_step_kind)id->kind &&
	    s->hook_wait && s->hook == idx && k[idx].st[j] == ST_SENT)
		hook_ended(s, &k[idx], j, false, st);
	return DRV_OK;
}

static int report_traffic_hook(struct drv_seq *s, const struct parsed_id *id, uint32_t agent,
                               int st, const char *why)
{
	struct seq_svc *v;
	uint32_t j = id->n[2];

	if (id->count != 3 || id->n[0] >= s->plan->n_services)
		return DRV_EINVAL;
	v = &s->svcs[id->n[0]];
	if (j >= v->traffic.n || v->traffic.agents[j] != agent)
		return DRV_EINVAL;
	if (v->op != OP_TRAFFIC || id->n[1] != v->op_n || v->traffic.st[j] != ST_SENT)
		return DRV_OK;
	v->traffic.st[j] = (uint8_t)st;
	v->op_failed |= st != ST_OK;
	if (v->op_inflight > 0 && --v->op_inflight == 0)
		op_complete(s, v, !v->op_failed, why ? why : "traffic hook failed");
	s->changed = true;
	return DRV_OK;
}

static int report_service(struct drv_seq *s, const struct parsed_id *id, uint32_t agent, int st,
                          const char *why)
{
	static const int kinds[] = {[DRV_SEQ_STEP_PRESTAGE] = K_PRESTAGE,
	                            [DRV_SEQ_STEP_START] = K_START,
	                            [DRV_SEQ_STEP_ROLLBACK] = K_ROLLBACK,
	                            [DRV_SEQ_STEP_FINALIZE] = K_FINALIZE};
	int kind = kinds[id->kind], off = id->kind == DRV_SEQ_STEP_ROLLBACK;
	struct seq_svc *v;
	uint32_t hi;

	if (id->count != 2 + off || id->n[off] >= s->plan->n_services)
		return DRV_EINVAL;
	v = &s->svcs[id->n[off]];
	hi = id->n[off + 1];
	if (hi >= v->n || v->hosts[hi].agent != agent)
		return DRV_EINVAL;
	if (v->hosts[hi].st[kind] != ST_SENT || (off && id->n[0] != s->rb_gen))
		return DRV_OK; /* duplicate, stale or abandoned */
	if (kind == K_PRESTAGE) {
		if (s->state == DRV_SEQ_PRESTAGE)
			prestage_ended(s, v, hi, st, why);
		return DRV_OK;
	}
	if (v->wave_kind == kind)
		svc_step_ended(s, v, hi, kind, st, why);
	return DRV_OK;
}

static int on_health(struct drv_seq *s, const struct drv_seq_event *ev, uint32_t agent)
{
	const struct drv_plan_service *ps =
	        ev->service ? drv_plan_service(s->plan, ev->service) : NULL;
	struct seq_svc *v;
	struct seq_host *h;
	int32_t hi;

	if (ps == NULL)
		return DRV_OK; /* not a service of this deployment */
	v = &s->svcs[ps - s->plan->services];
	hi = host_find(s, v, agent);
	if (hi < 0)
		return DRV_OK;
	h = &v->hosts[hi];
	if (ev->result == DRV_SEQ_R_HEALTH_UP) {
		h->flags &= (uint8_t)~HF_UNHEALTHY;
		return DRV_OK;
	}
	if (h->st[K_START] != ST_OK || (h->flags & HF_UNHEALTHY) || !svc_active(s, v))
		return DRV_OK;
	h->flags |= HF_UNHEALTHY;
	if (v->ok > 0)
		v->ok--;
	s->changed = true;
	seq_host_failed(s, v, (uint32_t)hi, ev->message ? ev->message : "became unhealthy");
	return DRV_OK;
}

static int on_report(struct drv_seq *s, const struct drv_seq_event *ev)
{
	struct parsed_id id;
	uint32_t agent;
	int st;

	if (ev->agent == NULL || seq_agent_find(s, ev->agent, &agent) != DRV_OK)
		return ev->result == DRV_SEQ_R_HEALTH_DOWN || ev->result == DRV_SEQ_R_HEALTH_UP
		               ? DRV_OK
		               : DRV_EINVAL;
	if (ev->result == DRV_SEQ_R_HEALTH_DOWN || ev->result == DRV_SEQ_R_HEALTH_UP)
		return on_health(s, ev, agent);
	if (parse_id(s, ev->id, &id) != DRV_OK || id.kind >= 100)
		return DRV_EINVAL;
	if (ev->result == DRV_SEQ_R_PROGRESS || drv_seq_state_terminal(s->state))
		return DRV_OK;
	st = ev->result == DRV_SEQ_R_OK ? ST_OK : ST_FAILED;
	switch (id.kind) {
	case DRV_SEQ_STEP_PRE:
	case DRV_SEQ_STEP_UP:
	case DRV_SEQ_STEP_DOWN:
	case DRV_SEQ_STEP_POST: return report_hook(s, &id, agent, st);
	case DRV_SEQ_STEP_TRAFFIC: return report_traffic_hook(s, &id, agent, st, ev->message);
	default: return report_service(s, &id, agent, st, ev->message);
	}
}

/* EV_TRAFFIC and EV_METRIC */
static int on_op(struct drv_seq *s, const struct drv_seq_event *ev)
{
	struct parsed_id id;
	struct seq_svc *v;
	int want = ev->kind == DRV_SEQ_EV_METRIC ? 100 : 101;

	if (parse_id(s, ev->id, &id) != DRV_OK || id.kind != want || id.count != 2 ||
	    id.n[0] >= s->plan->n_services)
		return DRV_EINVAL;
	v = &s->svcs[id.n[0]];
	if (v->op != (want == 100 ? OP_METRIC : OP_TRAFFIC) || id.n[1] != v->op_n ||
	    drv_seq_state_terminal(s->state))
		return DRV_OK; /* stale */
	if (want == 100)
		v->metric = ev->value;
	seq_log(s, "service %s: %s %s%s%s", v->ps->name, want == 100 ? "metric" : "traffic",
	        ev->result == DRV_SEQ_R_OK ? "ok" : "failed", ev->message ? ": " : "",
	        ev->message ? ev->message : "");
	op_complete(s, v, ev->result == DRV_SEQ_R_OK, ev->message);
	return DRV_OK;
}

/* ---- deadlines and timers ---- */

static void expire_wave(struct drv_seq *s, struct seq_svc *v)
{
	uint32_t from = v->wave_kind == K_START ? v->batch_start : 0;
	uint32_t to = v->wave_kind == K_START ? v->cursor : v->n;

	for (uint32_t hi = from; hi < to && v->inflight > 0; hi++) {
		if (v->hosts[hi].st[v->wave_kind] == ST_SENT)
			svc_step_ended(s, v, hi, v->wave_kind, ST_TIMEOUT,
			               "no report before the step's deadline");
	}
	v->inflight = 0;
}

static void expire_prestage(struct drv_seq *s)
{
	for (size_t i = 0; i < s->plan->n_services && s->state == DRV_SEQ_PRESTAGE; i++) {
		struct seq_svc *v = &s->svcs[i];

		for (uint32_t hi = 0; hi < v->n && s->state == DRV_SEQ_PRESTAGE; hi++) {
			if (v->hosts[hi].st[K_PRESTAGE] == ST_SENT)
				prestage_ended(s, v, hi, ST_TIMEOUT,
				               "no report before the deadline");
		}
	}
}

static void expire_hooks(struct drv_seq *s)
{
	enum drv_seq_step_kind kind;
	const struct drv_plan_hook *h;
	struct seq_hook *k;
	size_t n;

	if (s->hook_wait && s->now >= s->hook_deadline && phase_hooks(s, &k, &h, &n, &kind) &&
	    s->hook < n) {
		for (uint32_t j = 0; j < k[s->hook].n; j++) {
			if (k[s->hook].st[j] == ST_SENT)
				hook_ended(s, &k[s->hook], j, false, ST_TIMEOUT);
		}
		s->hook_inflight = 0;
	}
	if (s->rb_mig_wait && s->now >= s->rb_mig_deadline && s->rb_mig_i >= 0) {
		k = &s->mig[s->rb_mig_i];
		for (uint32_t j = 0; j < k->n; j++) {
			if (k->st2[j] == ST_SENT)
				hook_ended(s, k, j, true, ST_TIMEOUT);
		}
		s->rb_mig_inflight = 0;
	}
}

static void expire(struct drv_seq *s)
{
	if (drv_seq_state_terminal(s->state))
		return;
	if (s->state == DRV_SEQ_PRESTAGE && s->prestage_inflight > 0 &&
	    s->now >= s->prestage_deadline)
		expire_prestage(s);
	expire_hooks(s);
	for (size_t i = 0; i < s->plan->n_services; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (v->inflight > 0 && s->now >= v->wave_deadline)
			expire_wave(s, v);
		if (v->op != OP_NONE && s->now >= v->op_deadline)
			op_complete(s, v, false, "no answer before the deadline");
		if (v->wait == W_PAUSE && s->now >= v->timer) {
			v->wait = W_NONE;
			s->changed = true;
		}
	}
}

int64_t drv_seq_next_deadline(const struct drv_seq *s)
{
	int64_t t = INT64_MAX;

#define EARLIER(x)                                                                                 \
	do {                                                                                       \
		if ((x) < t)                                                                       \
			t = (x);                                                                   \
	} while (0)
	if (!s->started || drv_seq_state_terminal(s->state))
		return INT64_MAX;
	if (s->state == DRV_SEQ_PRESTAGE && s->prestage_inflight > 0)
		EARLIER(s->prestage_deadline);
	if (s->hook_wait)
		EARLIER(s->hook_deadline);
	if (s->rb_mig_wait)
		EARLIER(s->rb_mig_deadline);
	for (size_t i = 0; i < s->plan->n_services; i++) {
		const struct seq_svc *v = &s->svcs[i];

		if (v->inflight > 0)
			EARLIER(v->wave_deadline);
		if (v->op != OP_NONE)
			EARLIER(v->op_deadline);
		if (v->wait == W_PAUSE)
			EARLIER(v->timer);
		if (v->state == SVC_DONE && v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN &&
		    !v->fin_started && !s->paused && !s->failing)
			EARLIER(v->finalize_at);
	}
#undef EARLIER
	return t;
}

/* ---- phases ---- */

static void next_phase_after_hooks(struct drv_seq *s)
{
	switch (s->state) {
	case DRV_SEQ_PRE: seq_set_state(s, DRV_SEQ_MIGRATE, "pre hooks done"); break;
	case DRV_SEQ_MIGRATE:
		s->tier = 0;
		seq_set_state(s, DRV_SEQ_TIERS, "migrations applied");
		break;
	case DRV_SEQ_POST: seq_set_state(s, DRV_SEQ_FINALIZE, "post hooks done"); break;
	default: break;
	}
}

static void hook_failed(struct drv_seq *s, const struct drv_plan_hook *h)
{
	char why[DRV_SEQ_TEXT_MAX];
	enum drv_plan_rollback r = s->plan->services[0].failure.rollback;

	snprintf(why, sizeof(why), "%s hook %s failed on %u host(s)", drv_seq_state_name(s->state),
	         h->name, s->hook_failed);
	for (size_t i = 1; i < s->plan->n_services; i++) {
		if (s->plan->services[i].failure.rollback < r)
			r = s->plan->services[i]
			            .failure.rollback; /* the widest scope any service asks */
	}
	if (s->state == DRV_SEQ_PRE || r == DRV_ROLLBACK_NONE)
		seq_fail(s, why);
	else if (s->state == DRV_SEQ_MIGRATE)
		seq_rollback_begin(s, -1, 0, true, why);
	else if (r == DRV_ROLLBACK_DEPLOYMENT)
		seq_rollback_begin(s, (int32_t)s->plan->n_tiers - 1, 0, true, why);
	else
		seq_fail(s, why);
}

static void drive_hooks(struct drv_seq *s)
{
	enum drv_seq_step_kind kind;
	struct seq_hook *k;
	const struct drv_plan_hook *h;
	size_t n;

	if (!phase_hooks(s, &k, &h, &n, &kind) || s->failing)
		return;
	if (s->hook_wait) {
		if (s->hook_inflight > 0)
			return;
		s->hook_wait = false;
		s->changed = true;
		if (s->hook_failed > 0)
			return hook_failed(s, &h[s->hook]);
		if (kind == DRV_SEQ_STEP_UP)
			s->mig_done = s->hook + 1;
		seq_log(s, "%s hook %s done", drv_seq_state_name(s->state), h[s->hook].name);
		s->hook++;
	}
	if (s->hook >= n)
		return next_phase_after_hooks(s);
	if (s->paused)
		return;
	s->hook_wait = true;
	s->hook_failed = 0;
	s->hook_inflight = k[s->hook].n;
	s->hook_deadline = s->now + h[s->hook].timeout_ms + DRV_SEQ_SLACK_MS;
	seq_log(s, "%s hook %s: running on %u host(s)", drv_seq_state_name(s->state),
	        h[s->hook].name, k[s->hook].n);
	for (uint32_t j = 0; j < k[s->hook].n; j++) {
		k[s->hook].st[j] = ST_SENT;
		seq_emit_hook(s, kind, s->hook, j);
	}
}

/* A failing deployment (rollback scope service) ends once no service runs
 * or rolls back any more. */
static void end_if_settled(struct drv_seq *s)
{
	char why[DRV_SEQ_TEXT_MAX];

	for (size_t i = 0; i < s->plan->n_services; i++) {
		if (s->svcs[i].state == SVC_RUNNING || s->svcs[i].state == SVC_RB)
			return;
	}
	snprintf(why, sizeof(why), "%s", s->reason);
	if (s->rb_failures > 0) {
		seq_set_state(s, DRV_SEQ_FAILED, "the rollback failed on some hosts");
		seq_notify(s, DRV_EVENT_FAILED, "rollback incomplete: %s", why);
	} else {
		seq_set_state(s, DRV_SEQ_ROLLED_BACK, why);
		seq_notify(s, DRV_EVENT_ROLLED_BACK, "%s", why);
	}
}

static void drive_tiers(struct drv_seq *s)
{
	const struct drv_plan_tier *t = &s->plan->tiers[s->tier];
	bool settled = true;

	for (size_t i = t->first; i < t->first + t->n; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (v->state == SVC_PENDING && !s->paused && !s->failing) {
			v->state = SVC_RUNNING;
			v->wait = W_NONE;
			seq_log(s, "service %s: %s on %u host(s)", v->ps->name,
			        seq_strategy_of(v)->name, v->n);
		}
		if (v->state == SVC_RUNNING && v->wait == W_NONE && s->state == DRV_SEQ_TIERS)
			seq_strategy_of(v)->advance(s, v);
		settled &=
		        v->state == SVC_DONE || v->state == SVC_RB_DONE || v->state == SVC_HALTED;
	}
	if (s->state == DRV_SEQ_TIERS && s->failing)
		return end_if_settled(s);
	if (s->state != DRV_SEQ_TIERS || !settled)
		return;
	seq_notify(s, DRV_EVENT_TIER_DONE, "tier %s done", t->name);
	if (s->tier + 1 < s->plan->n_tiers) {
		s->tier++;
		seq_log(s, "tier %s done; tier %s starts", t->name, s->plan->tiers[s->tier].name);
	} else {
		seq_set_state(s, DRV_SEQ_POST, "every tier is done");
	}
}

/* Blue-green services drop their old slot after finalize_after. */
static void drive_finalizers(struct drv_seq *s)
{
	if (s->state != DRV_SEQ_TIERS && s->state != DRV_SEQ_POST && s->state != DRV_SEQ_FINALIZE)
		return;
	for (size_t i = 0; i < s->plan->n_services && !s->paused && !s->failing; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (v->state != SVC_DONE || v->ps->strategy.type != DRV_STRATEGY_BLUEGREEN ||
		    v->fin_started || s->now < v->finalize_at)
			continue;
		v->fin_started = true;
		v->fin_failed = 0;
		seq_wave_begin(s, v, K_FINALIZE);
		seq_log(s, "service %s: finalizing (dropping the old slot)", v->ps->name);
		for (uint32_t hi = 0; hi < v->n; hi++)
			seq_send_host(s, v, hi, K_FINALIZE);
	}
}

static void drive_finalize(struct drv_seq *s)
{
	uint32_t failed = 0;

	if (s->failing)
		return end_if_settled(s);
	for (size_t i = 0; i < s->plan->n_services; i++) {
		const struct seq_svc *v = &s->svcs[i];

		if (v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN && !v->finalized)
			return;
		failed += v->failed;
	}
	seq_set_state(s, DRV_SEQ_SUCCEEDED,
	              failed ? "done, with failed hosts within the budget" : "done");
	seq_notify(s, DRV_EVENT_SUCCEEDED, "%s %s deployed%s", s->plan->deployment,
	           s->plan->version, failed ? " (some hosts failed within the budget)" : "");
}

static void drive_once(struct drv_seq *s)
{
	expire(s);
	/* services rolling back on their own (scope service), in any tier */
	for (size_t i = 0; i < s->plan->n_services && s->state != DRV_SEQ_ROLLBACK; i++) {
		if (s->svcs[i].state == SVC_RB && !drv_seq_state_terminal(s->state))
			seq_svc_rb_drive(s, &s->svcs[i]);
	}
	switch (s->state) {
	case DRV_SEQ_PRESTAGE:
		if (s->prestage_inflight == 0)
			seq_set_state(s, DRV_SEQ_PRE, "every target host has its images");
		break;
	case DRV_SEQ_PRE:
	case DRV_SEQ_MIGRATE: drive_hooks(s); break;
	case DRV_SEQ_POST:
		if (s->failing)
			end_if_settled(s);
		else
			drive_hooks(s);
		break;
	case DRV_SEQ_TIERS: drive_tiers(s); break;
	case DRV_SEQ_FINALIZE: drive_finalize(s); break;
	case DRV_SEQ_ROLLBACK: seq_rb_drive(s); break;
	default: break;
	}
	drive_finalizers(s);
}

void seq_drive(struct drv_seq *s)
{
	for (int guard = 0; guard < 100000; guard++) {
		s->changed = false;
		drive_once(s);
		if (s->changed)
			s->out->persist = true;
		if (!s->changed || s->oom)
			return;
	}
}

/* ---- operator verbs ---- */

static int on_pause(struct drv_seq *s, bool pause)
{
	if (!s->started || drv_seq_state_terminal(s->state) ||
	    (pause && s->state == DRV_SEQ_ROLLBACK))
		return DRV_ESTATE;
	if (s->paused == pause)
		return DRV_OK;
	s->paused = pause;
	s->changed = true;
	seq_log(s, "%s by the operator", pause ? "paused" : "resumed");
	seq_notify(s, pause ? DRV_EVENT_PAUSED : DRV_EVENT_RESUMED, "%s %s", s->plan->deployment,
	           pause ? "paused" : "resumed");
	return DRV_OK;
}

static int on_promote(struct drv_seq *s, const char *only)
{
	bool any = false;

	if (drv_seq_state_terminal(s->state) || s->state == DRV_SEQ_ROLLBACK)
		return DRV_ESTATE;
	for (size_t i = 0; i < s->plan->n_services; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (only != NULL && strcmp(only, v->ps->name) != 0)
			continue;
		if (v->state == SVC_RUNNING && seq_strategy_of(v)->promote(s, v))
			any = true;
	}
	for (size_t i = 0; i < s->plan->n_services && !any; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (only != NULL && strcmp(only, v->ps->name) != 0)
			continue;
		if (v->state == SVC_DONE && v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN &&
		    !v->fin_started && v->finalize_at > s->now) {
			v->finalize_at = s->now;
			any = true;
		}
	}
	if (!any)
		return DRV_ESTATE;
	s->changed = true;
	seq_log(s, "promoted by the operator%s%s", only ? ": " : "", only ? only : "");
	return DRV_OK;
}

static int on_abort(struct drv_seq *s)
{
	if (!s->started || drv_seq_state_terminal(s->state))
		return DRV_ESTATE;
	snprintf(s->reason, sizeof(s->reason), "aborted by the operator");
	seq_set_state(s, DRV_SEQ_ABORTED, "aborted by the operator; nothing is rolled back");
	seq_notify(s, DRV_EVENT_ABORTED, "%s %s aborted", s->plan->deployment, s->plan->version);
	return DRV_OK;
}

/* The highest tier any service of which was touched, or -1. */
static int32_t touched_tier(const struct drv_seq *s)
{
	int32_t t = -1;

	for (size_t i = 0; i < s->plan->n_services; i++) {
		if (s->svcs[i].cursor > 0 && (int32_t)s->svcs[i].ps->tier > t)
			t = (int32_t)s->svcs[i].ps->tier;
	}
	return t;
}

/* Something was changed and not rolled back yet. */
static bool anything_to_roll_back(const struct drv_seq *s)
{
	if (s->mig_done > 0)
		return true;
	for (size_t i = 0; i < s->plan->n_services; i++) {
		if (s->svcs[i].cursor > 0 && s->svcs[i].state != SVC_RB_DONE)
			return true;
	}
	return false;
}

static int on_rollback(struct drv_seq *s)
{
	if (!s->started || s->state == DRV_SEQ_ROLLBACK ||
	    (s->state == DRV_SEQ_ROLLED_BACK && !anything_to_roll_back(s)))
		return DRV_ESTATE;
	if (s->state == DRV_SEQ_FAILED && s->rb_started && s->rb_failures == 0)
		return DRV_ESTATE;
	seq_rollback_begin(s, touched_tier(s), 0, true, "rollback requested by the operator");
	return DRV_OK;
}

/* ---- entry points ---- */

static int finish(struct drv_seq *s, int rc)
{
	if (rc == DRV_OK && s->started)
		seq_drive(s);
	s->out = NULL;
	return s->oom ? DRV_ENOMEM : rc;
}

int drv_seq_start(struct drv_seq *s, int64_t now, struct drv_seq_actions *out)
{
	if (s->started)
		return DRV_ESTATE;
	if (!targets_ok(s))
		return DRV_EINVAL;
	s->out = out;
	s->now = now;
	s->started = true;
	s->started_at = now;
	s->reason[0] = '\0';
	sort_seq = s;
	for (size_t i = 0; i < s->plan->n_services; i++) {
		qsort(s->svcs[i].hosts, s->svcs[i].n, sizeof(struct seq_host), host_cmp);
		s->total_hosts += s->svcs[i].n;
	}
	s->prestage_deadline = now + s->plan->prestage_timeout_ms + DRV_SEQ_SLACK_MS;
	seq_notify(s, DRV_EVENT_STARTED, "%s %s started", s->plan->deployment, s->plan->version);
	seq_set_state(s, DRV_SEQ_PRESTAGE, "pulling images on every target host");
	for (size_t i = 0; i < s->plan->n_services; i++) {
		for (uint32_t hi = 0; hi < s->svcs[i].n; hi++)
			seq_send_host(s, &s->svcs[i], hi, K_PRESTAGE);
	}
	return finish(s, DRV_OK);
}

int drv_seq_handle(struct drv_seq *s, const struct drv_seq_event *ev, int64_t now,
                   struct drv_seq_actions *out)
{
	int rc;

	if (!s->started || ev == NULL)
		return DRV_ESTATE;
	s->out = out;
	if (now > s->now)
		s->now = now; /* time never runs backwards inside the machine */
	s->changed = false;
	switch (ev->kind) {
	case DRV_SEQ_EV_REPORT: rc = on_report(s, ev); break;
	case DRV_SEQ_EV_TICK: rc = DRV_OK; break;
	case DRV_SEQ_EV_TRAFFIC:
	case DRV_SEQ_EV_METRIC: rc = on_op(s, ev); break;
	case DRV_SEQ_EV_PAUSE: rc = on_pause(s, true); break;
	case DRV_SEQ_EV_RESUME: rc = on_pause(s, false); break;
	case DRV_SEQ_EV_PROMOTE: rc = on_promote(s, ev->service); break;
	case DRV_SEQ_EV_ABORT: rc = on_abort(s); break;
	case DRV_SEQ_EV_ROLLBACK: rc = on_rollback(s); break;
	default: rc = DRV_EINVAL; break;
	}
	if (s->changed)
		out->persist = true;
	return finish(s, rc);
}

enum drv_seq_state drv_seq_state(const struct drv_seq *s)
{
	return (enum drv_seq_state)s->state;
}

bool drv_seq_paused(const struct drv_seq *s)
{
	return s->paused;
}

const char *drv_seq_error(const struct drv_seq *s)
{
	return s->reason;
}

const struct seq_strategy *seq_strategy_of(const struct seq_svc *v)
{
	switch (v->ps->strategy.type) {
	case DRV_STRATEGY_CANARY: return &seq_canary;
	case DRV_STRATEGY_BLUEGREEN: return &seq_bluegreen;
	default: return &seq_rolling;
	}
}
