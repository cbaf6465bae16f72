/*
 * seq_target.c: the sequencer's targets: interned agent ids, the hosts of
 * every service and hook (sorted naturally, so web-2 comes before web-10),
 * creation and destruction.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "seq_int.h"

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
		free(s->svcs[i].stored);
		free(s->svcs[i].an_query);
		hook_free(&s->svcs[i].traffic);
		hook_free(&s->svcs[i].live);
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

int drv_seq_use_set(struct drv_seq *s, size_t service, uint32_t set, bool first)
{
	if (s->started || service >= s->plan->n_services || set >= DRV_PLAN_SETS ||
	    !seq_sets(&s->svcs[service]))
		return DRV_EINVAL;
	s->svcs[service].set_new = (uint8_t)set;
	s->svcs[service].set_first = first;
	return DRV_OK;
}

int drv_seq_add_live_host(struct drv_seq *s, size_t service, const char *agent)
{
	uint32_t idx;

	if (s->started || service >= s->plan->n_services || agent == NULL ||
	    !seq_sets(&s->svcs[service]))
		return DRV_EINVAL;
	if (s->svcs[service].live.n >= DRV_PLAN_MAX_HOSTS)
		return DRV_ETOOBIG;
	if (seq_agent_intern(s, agent, &idx) != DRV_OK)
		return DRV_ENOMEM;
	return seq_hook_add(&s->svcs[service].live, idx);
}

const char *drv_seq_live_set(const struct drv_seq *s, size_t service)
{
	const struct seq_svc *v = service < s->plan->n_services ? &s->svcs[service] : NULL;

	if (v == NULL || !seq_sets(v) || !v->switched)
		return NULL;
	return seq_set_name(v, !v->back);
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

struct seq_hook *seq_hook_list(struct drv_seq *s, enum drv_seq_step_kind list, size_t index)
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
	struct seq_hook *k = s->started ? NULL : seq_hook_list(s, list, index);
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

static int host_cmp(const void *x, const void *y, void *arg)
{
	const struct drv_seq *s = arg;
	const struct seq_host *a = x, *b = y;
	int c = natural_cmp(s->agents[a->agent], s->agents[b->agent]);

	return c != 0 ? c : strcmp(s->agents[a->agent], s->agents[b->agent]);
}

void seq_sort_hosts(struct drv_seq *s)
{
	for (size_t i = 0; i < s->plan->n_services; i++)
		qsort_r(s->svcs[i].hosts, s->svcs[i].n, sizeof(struct seq_host), host_cmp, s);
}

/* The host of agent idx in v (hosts are sorted), or -1. */
int32_t seq_host_find(const struct drv_seq *s, const struct seq_svc *v, uint32_t idx)
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
bool seq_targets_ok(struct drv_seq *s)
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
