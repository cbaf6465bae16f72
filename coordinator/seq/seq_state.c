/*
 * seq_state.c: the sequencer's state as JSON (save, load), resuming after a
 * restart, and the progress report for the API.
 *
 * Scalars are listed once in field tables (name, offset, type) so that save
 * and load cannot drift apart; hosts are compact arrays
 * [agent, flags, prestage, start, rollback, finalize] with the agent an
 * index into "agents". The plan is not in the state: a hash of its
 * normalized JSON ties the two together.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "seq_int.h"

struct field {
	const char *name;
	size_t off;
	char type; /* b bool, c uint8, u uint32, i int32, I int64, d double */
};

#define SF(name, type)                                                                             \
	{                                                                                          \
#name, offsetof(struct drv_seq, name), type                                        \
	}
#define VF(name, type)                                                                             \
	{                                                                                          \
#name, offsetof(struct seq_svc, name), type                                        \
	}

static const struct field seq_fields[] = {
        SF(state, 'c'),
        SF(paused, 'b'),
        SF(failing, 'b'),
        SF(started, 'b'),
        SF(tier, 'u'),
        SF(hook, 'u'),
        SF(hook_wait, 'b'),
        SF(hook_inflight, 'u'),
        SF(hook_failed, 'u'),
        SF(hook_deadline, 'I'),
        SF(prestage_inflight, 'u'),
        SF(prestage_deadline, 'I'),
        SF(mig_done, 'u'),
        SF(rb_tier, 'i'),
        SF(rb_stop, 'i'),
        SF(rb_mig, 'b'),
        SF(rb_started, 'b'),
        SF(rb_gen, 'u'),
        SF(rb_mig_i, 'i'),
        SF(rb_mig_wait, 'b'),
        SF(rb_mig_inflight, 'u'),
        SF(rb_failures, 'u'),
        SF(rb_first_fail, 'u'),
        SF(rb_mig_deadline, 'I'),
        SF(failed_hosts, 'u'),
        SF(total_hosts, 'u'),
        SF(started_at, 'I'),
        SF(ended_at, 'I'),
        SF(now, 'I'),
};

static const struct field svc_fields[] = {
        VF(state, 'c'),       VF(wait, 'c'),        VF(sub, 'c'),
        VF(op, 'c'),          VF(rb, 'c'),          VF(wave_kind, 'c'),
        VF(switched, 'b'),    VF(finalized, 'b'),   VF(fin_started, 'b'),
        VF(step, 'u'),        VF(cursor, 'u'),      VF(batch_start, 'u'),
        VF(inflight, 'u'),    VF(wave_failed, 'u'), VF(failed, 'u'),
        VF(ok, 'u'),          VF(rb_cursor, 'u'),   VF(rb_ok, 'u'),
        VF(rb_failed, 'u'),   VF(fin_failed, 'u'),  VF(wave_deadline, 'I'),
        VF(timer, 'I'),       VF(op_deadline, 'I'), VF(finalize_at, 'I'),
        VF(op_n, 'u'),        VF(op_percent, 'i'),  VF(op_to_new, 'b'),
        VF(op_inflight, 'u'), VF(op_failed, 'b'),   VF(metric, 'd'),
};

/* Added with the bake: a state saved before has none (0). */
static const struct field seq_fields_opt[] = {
        SF(bake_until, 'I'),
        SF(baked, 'b'),
        /* added with the release baseline */
        SF(recording, 'b'),
        SF(recorded, 'b'),
        /* added with the approval at a canary step */
        SF(approve_lo, 'I'),
        SF(approve_hi, 'I'),
};

/* Added with the Prometheus analysis: a state saved before has none (0). */
static const struct field svc_fields_opt[] = {
        VF(an_check, 'u'),
        VF(an_fails, 'u'),
        VF(an_retry, 'b'),
        VF(an_hold, 'b'),
        /* added with checks during a canary's pause */
        VF(pause_until, 'I'),
        /* added with blue-green across host sets */
        VF(set_new, 'c'),
        VF(set_first, 'b'),
        VF(back, 'b'),
};

#define N_FIELDS(t) (sizeof(t) / sizeof((t)[0]))

static json_t *field_get(const void *base, const struct field *f)
{
	const char *p = (const char *)base + f->off;

	switch (f->type) {
	case 'b': return json_boolean(*(const bool *)p);
	case 'c': return json_integer(*(const uint8_t *)p);
	case 'u': return json_integer(*(const uint32_t *)p);
	case 'i': return json_integer(*(const int32_t *)p);
	case 'I': return json_integer(*(const int64_t *)p);
	default: return json_real(*(const double *)p);
	}
}

static bool field_set(void *base, const struct field *f, const json_t *v)
{
	char *p = (char *)base + f->off;
	json_int_t n = json_integer_value(v);

	if (f->type == 'b') {
		if (!json_is_boolean(v))
			return false;
		*(bool *)p = json_is_true(v);
		return true;
	}
	if (f->type == 'd') {
		if (!json_is_number(v))
			return false;
		*(double *)p = json_number_value(v);
		return true;
	}
	if (!json_is_integer(v))
		return false;
	switch (f->type) {
	case 'c':
		if (n < 0 || n > 255)
			return false;
		*(uint8_t *)p = (uint8_t)n;
		return true;
	case 'u':
		if (n < 0 || n > UINT32_MAX)
			return false;
		*(uint32_t *)p = (uint32_t)n;
		return true;
	case 'i':
		if (n < INT32_MIN || n > INT32_MAX)
			return false;
		*(int32_t *)p = (int32_t)n;
		return true;
	default: *(int64_t *)p = (int64_t)n; return true;
	}
}

static int fields_save(json_t *o, const void *base, const struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (json_object_set_new(o, f[i].name, field_get(base, &f[i])) != 0)
			return DRV_ENOMEM;
	}
	return DRV_OK;
}

static int fields_load(const json_t *o, void *base, const struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!field_set(base, &f[i], json_object_get(o, f[i].name)))
			return DRV_EINVAL;
	}
	return DRV_OK;
}

static int fields_load_opt(const json_t *o, void *base, const struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_object_get(o, f[i].name);
		if (v != NULL && !field_set(base, &f[i], v))
			return DRV_EINVAL;
	}
	return DRV_OK;
}

/* ---- plan identity ---- */

uint64_t seq_plan_hash(const struct drv_plan *plan)
{
	json_t *j = drv_plan_to_json(plan);
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	uint64_t h = 1469598103934665603ULL;

	for (const char *p = text; p != NULL && *p != '\0'; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ULL;
	}
	free(text);
	json_decref(j);
	return h;
}

/* ---- save ---- */

json_t *seq_host_json(const struct seq_host *h)
{
	return json_pack("[iiiiii]", h->agent, h->flags, h->st[0], h->st[1], h->st[2], h->st[3]);
}

static json_t *hosts_save(const struct seq_svc *v)
{
	json_t *arr = json_array();

	for (uint32_t i = 0; arr != NULL && i < v->n; i++) {
		json_t *e = seq_host_json(&v->hosts[i]);

		if (e == NULL || json_array_append_new(arr, e) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *hook_save(const struct seq_hook *k)
{
	json_t *arr = json_array();

	for (uint32_t j = 0; arr != NULL && j < k->n; j++) {
		json_t *e = json_pack("[iii]", k->agents[j], k->st[j], k->st2[j]);

		if (e == NULL || json_array_append_new(arr, e) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *hooks_save(const struct seq_hook *k, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < n; i++) {
		if (json_array_append_new(arr, hook_save(&k[i])) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *svc_save(const struct seq_svc *v, bool hosts)
{
	json_t *o = json_object();

	if (o == NULL || fields_save(o, v, svc_fields, N_FIELDS(svc_fields)) != DRV_OK ||
	    fields_save(o, v, svc_fields_opt, N_FIELDS(svc_fields_opt)) != DRV_OK ||
	    json_object_set_new(o, "why", json_string(v->why)) != 0 ||
	    json_object_set_new(o, "traffic", hook_save(&v->traffic)) != 0 ||
	    (seq_sets(v) && json_object_set_new(o, "live", hook_save(&v->live)) != 0) ||
	    json_object_set_new(o, hosts ? "hosts" : "n_hosts",
	                        hosts ? hosts_save(v) : json_integer(v->n)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int seq_save_json(const struct drv_seq *s, bool hosts, json_t **out)
{
	json_t *o = json_object(), *agents = hosts ? json_array() : json_integer(s->n_agents),
	       *svcs = json_array();
	char hash[20];
	bool bad = o == NULL || agents == NULL || svcs == NULL;

	snprintf(hash, sizeof(hash), "%016" PRIx64, s->plan_hash);
	for (uint32_t i = 0; hosts && !bad && i < s->n_agents; i++)
		bad = json_array_append_new(agents, json_string(s->agents[i])) != 0;
	for (size_t i = 0; !bad && i < s->plan->n_services; i++)
		bad = json_array_append_new(svcs, svc_save(&s->svcs[i], hosts)) != 0;
	bad = bad || json_object_set_new(o, "v", json_integer(DRV_SEQ_STATE_VERSION)) != 0 ||
	      json_object_set_new(o, "id", json_string(s->id)) != 0 ||
	      json_object_set_new(o, "plan_hash", json_string(hash)) != 0 ||
	      json_object_set_new(o, "reason", json_string(s->reason)) != 0 ||
	      fields_save(o, s, seq_fields, N_FIELDS(seq_fields)) != DRV_OK ||
	      fields_save(o, s, seq_fields_opt, N_FIELDS(seq_fields_opt)) != DRV_OK ||
	      json_object_set(o, hosts ? "agents" : "n_agents", agents) != 0 ||
	      json_object_set(o, "services", svcs) != 0 ||
	      json_object_set_new(o, "pre", hooks_save(s->pre, s->plan->n_pre)) != 0 ||
	      json_object_set_new(o, "migrations", hooks_save(s->mig, s->plan->n_migrations)) !=
	              0 ||
	      json_object_set_new(o, "post", hooks_save(s->post, s->plan->n_post)) != 0;
	json_decref(agents);
	json_decref(svcs);
	if (bad) {
		json_decref(o);
		return DRV_ENOMEM;
	}
	*out = o;
	return DRV_OK;
}

int drv_seq_save(const struct drv_seq *s, json_t **out)
{
	return seq_save_json(s, true, out);
}

/* ---- load ---- */

static bool small(const json_t *v, json_int_t max)
{
	return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= max;
}

static int hook_load(struct drv_seq *s, const json_t *arr, struct seq_hook *k)
{
	size_t j;
	json_t *e;

	if (!json_is_array(arr))
		return DRV_EINVAL;
	json_array_foreach(arr, j, e)
	{
		if (!json_is_array(e) || json_array_size(e) != 3 ||
		    !small(json_array_get(e, 0), (json_int_t)s->n_agents - 1) ||
		    !small(json_array_get(e, 1), ST_ABANDONED) ||
		    !small(json_array_get(e, 2), ST_ABANDONED))
			return DRV_EINVAL;
		if (seq_hook_add(k, (uint32_t)json_integer_value(json_array_get(e, 0))) != DRV_OK)
			return DRV_EINVAL;
		k->st[j] = (uint8_t)json_integer_value(json_array_get(e, 1));
		k->st2[j] = (uint8_t)json_integer_value(json_array_get(e, 2));
	}
	return DRV_OK;
}

static int hooks_load(struct drv_seq *s, const json_t *arr, struct seq_hook *k, size_t n)
{
	if (!json_is_array(arr) || json_array_size(arr) != n)
		return DRV_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (hook_load(s, json_array_get(arr, i), &k[i]) != DRV_OK)
			return DRV_EINVAL;
	}
	return DRV_OK;
}

static int host_load(const struct drv_seq *s, const json_t *e, struct seq_host *h)
{
	if (!json_is_array(e) || json_array_size(e) != 2 + K_COUNT ||
	    !small(json_array_get(e, 0), (json_int_t)s->n_agents - 1) ||
	    !small(json_array_get(e, 1), 0xff))
		return DRV_EINVAL;
	h->agent = (uint32_t)json_integer_value(json_array_get(e, 0));
	h->flags = (uint8_t)json_integer_value(json_array_get(e, 1));
	for (int k = 0; k < K_COUNT; k++) {
		if (!small(json_array_get(e, 2 + k), ST_ABANDONED))
			return DRV_EINVAL;
		h->st[k] = (uint8_t)json_integer_value(json_array_get(e, 2 + k));
	}
	return DRV_OK;
}

static int svc_load(struct drv_seq *s, const json_t *o, struct seq_svc *v)
{
	const json_t *hosts = json_object_get(o, "hosts"), *why = json_object_get(o, "why");
	size_t n = json_array_size(hosts);

	if (!json_is_object(o) || !json_is_array(hosts) || n > DRV_PLAN_MAX_HOSTS ||
	    !json_is_string(why) || fields_load(o, v, svc_fields, N_FIELDS(svc_fields)) != DRV_OK ||
	    fields_load_opt(o, v, svc_fields_opt, N_FIELDS(svc_fields_opt)) != DRV_OK ||
	    hook_load(s, json_object_get(o, "traffic"), &v->traffic) != DRV_OK ||
	    (json_object_get(o, "live") != NULL &&
	     hook_load(s, json_object_get(o, "live"), &v->live) != DRV_OK))
		return DRV_EINVAL;
	snprintf(v->why, sizeof(v->why), "%s", json_string_value(why));
	v->hosts = calloc(n + 1, sizeof(*v->hosts));
	if (v->hosts == NULL)
		return DRV_ENOMEM;
	v->cap = (uint32_t)n + 1;
	for (size_t i = 0; i < n; i++) {
		if (host_load(s, json_array_get(hosts, i), &v->hosts[i]) != DRV_OK)
			return DRV_EINVAL;
		v->n++;
	}
	if (v->cursor > v->n || v->batch_start > v->cursor || v->rb_cursor > v->n ||
	    v->state > SVC_RB_DONE || v->wait > W_APPROVE || v->op > OP_CHECK || v->rb > RB_END ||
	    v->wave_kind >= K_COUNT || v->sub > 6 || v->set_new >= DRV_PLAN_SETS)
		return DRV_EINVAL;
	return DRV_OK;
}

static int agents_load(struct drv_seq *s, const json_t *agents)
{
	size_t i;
	json_t *a;
	uint32_t idx;

	if (!json_is_array(agents))
		return DRV_EINVAL;
	json_array_foreach(agents, i, a)
	{
		if (!json_is_string(a) ||
		    seq_agent_intern(s, json_string_value(a), &idx) != DRV_OK || idx != i)
			return DRV_EINVAL;
	}
	return DRV_OK;
}

static int load_into(struct drv_seq *s, const json_t *st)
{
	const json_t *svcs = json_object_get(st, "services"),
	             *reason = json_object_get(st, "reason");
	char hash[20];
	int rc;

	snprintf(hash, sizeof(hash), "%016" PRIx64, s->plan_hash);
	if (json_integer_value(json_object_get(st, "v")) != DRV_SEQ_STATE_VERSION ||
	    !json_is_string(json_object_get(st, "plan_hash")) ||
	    strcmp(json_string_value(json_object_get(st, "plan_hash")), hash) != 0 ||
	    !json_is_string(reason) || !json_is_array(svcs) ||
	    json_array_size(svcs) != s->plan->n_services)
		return DRV_EINVAL;
	rc = agents_load(s, json_object_get(st, "agents"));
	if (rc != DRV_OK || fields_load(st, s, seq_fields, N_FIELDS(seq_fields)) != DRV_OK ||
	    fields_load_opt(st, s, seq_fields_opt, N_FIELDS(seq_fields_opt)) != DRV_OK)
		return DRV_EINVAL;
	snprintf(s->reason, sizeof(s->reason), "%s", json_string_value(reason));
	for (size_t i = 0; i < s->plan->n_services; i++) {
		rc = svc_load(s, json_array_get(svcs, i), &s->svcs[i]);
		if (rc != DRV_OK)
			return rc;
	}
	if (hooks_load(s, json_object_get(st, "pre"), s->pre, s->plan->n_pre) != DRV_OK ||
	    hooks_load(s, json_object_get(st, "migrations"), s->mig, s->plan->n_migrations) !=
	            DRV_OK ||
	    hooks_load(s, json_object_get(st, "post"), s->post, s->plan->n_post) != DRV_OK)
		return DRV_EINVAL;
	if (s->state > DRV_SEQ_ABORTED || s->tier >= s->plan->n_tiers ||
	    s->rb_tier >= (int32_t)s->plan->n_tiers || s->mig_done > s->plan->n_migrations ||
	    s->rb_mig_i >= (int32_t)s->plan->n_migrations)
		return DRV_EINVAL;
	return DRV_OK;
}

int drv_seq_load(const struct drv_plan *plan, const json_t *state, struct drv_seq **out)
{
	const json_t *id = json_object_get(state, "id");
	struct drv_seq *s;
	int rc;

	if (!json_is_object(state) || !json_is_string(id))
		return DRV_EINVAL;
	rc = drv_seq_new(plan, json_string_value(id), &s);
	if (rc != DRV_OK)
		return rc;
	rc = load_into(s, state);
	if (rc != DRV_OK) {
		drv_seq_free(s);
		return rc;
	}
	*out = s;
	return DRV_OK;
}

/* ---- resume ---- */

static void extend(int64_t *deadline, int64_t now)
{
	if (*deadline < now + DRV_SEQ_RESUME_GRACE_MS)
		*deadline = now + DRV_SEQ_RESUME_GRACE_MS;
}

static void resume_hooks(struct drv_seq *s)
{
	enum drv_seq_step_kind kind = s->state == DRV_SEQ_PRE       ? DRV_SEQ_STEP_PRE
	                              : s->state == DRV_SEQ_MIGRATE ? DRV_SEQ_STEP_UP
	                                                            : DRV_SEQ_STEP_POST;
	struct seq_hook *k = s->state == DRV_SEQ_PRE       ? s->pre
	                     : s->state == DRV_SEQ_MIGRATE ? s->mig
	                                                   : s->post;

	if (s->hook_wait && s->state >= DRV_SEQ_PRE && s->state <= DRV_SEQ_POST &&
	    s->state != DRV_SEQ_TIERS) {
		extend(&s->hook_deadline, s->now);
		for (uint32_t j = 0; j < k[s->hook].n; j++) {
			if (k[s->hook].st[j] == ST_SENT)
				seq_emit_hook(s, kind, s->hook, j);
		}
	}
	if (s->rb_mig_wait && s->rb_mig_i >= 0) {
		extend(&s->rb_mig_deadline, s->now);
		for (uint32_t j = 0; j < s->mig[s->rb_mig_i].n; j++) {
			if (s->mig[s->rb_mig_i].st2[j] == ST_SENT)
				seq_emit_hook(s, DRV_SEQ_STEP_DOWN, (uint32_t)s->rb_mig_i, j);
		}
	}
}

static void resume_svc(struct drv_seq *s, struct seq_svc *v)
{
	if (s->state == DRV_SEQ_PRESTAGE) {
		for (uint32_t hi = 0; hi < v->n; hi++) {
			if (v->hosts[hi].st[K_PRESTAGE] == ST_SENT)
				seq_emit_host(s, v, hi, K_PRESTAGE);
		}
	}
	if (v->inflight > 0) {
		extend(&v->wave_deadline, s->now);
		for (uint32_t hi = 0; hi < v->n; hi++) {
			if (v->hosts[hi].st[v->wave_kind] == ST_SENT)
				seq_emit_host(s, v, hi, v->wave_kind);
		}
		for (uint32_t j = 0; v->wave_kind == K_FINALIZE && j < v->live.n; j++) {
			if (v->live.st[j] == ST_SENT)
				seq_emit_decommission(s, v, j);
		}
	}
	if (v->op != OP_NONE) {
		extend(&v->op_deadline, s->now);
		if (v->op == OP_TRAFFIC)
			seq_emit_traffic(s, v);
		else if (v->op == OP_CHECK)
			seq_emit_check(s, v);
		else
			seq_emit_metric(s, v);
	}
}

int drv_seq_resume(struct drv_seq *s, int64_t now, struct drv_seq_actions *out)
{
	if (!s->started)
		return DRV_ESTATE;
	s->out = out;
	if (now > s->now)
		s->now = now;
	if (!drv_seq_state_terminal(s->state)) {
		seq_log(s, "resumed in state %s after a restart", drv_seq_state_name(s->state));
		if (s->state == DRV_SEQ_PRESTAGE)
			extend(&s->prestage_deadline, s->now);
		resume_hooks(s);
		for (size_t i = 0; i < s->plan->n_services; i++)
			resume_svc(s, &s->svcs[i]);
		seq_drive(s);
	}
	s->out = NULL;
	return s->oom ? DRV_ENOMEM : DRV_OK;
}

/* ---- status ---- */

static const char *const svc_state_names[] = {"pending", "running",      "done",
                                              "halted",  "rolling_back", "rolled_back"};
static const char *const st_names[] = {"none", "sent", "ok", "failed", "timeout", "abandoned"};

static const char *svc_waiting(const struct seq_svc *v)
{
	if (v->state == SVC_RB)
		return v->op != OP_NONE ? "traffic" : "rollback";
	switch (v->wait) {
	case W_WAVE: return "hosts";
	case W_OP:
		return v->op == OP_METRIC ? "metric" : v->op == OP_CHECK ? "analysis" : "traffic";
	case W_PAUSE: return "pause";
	case W_PROMOTE: return "promote";
	case W_APPROVE: return "approval";
	default:
		if (v->state == SVC_DONE && v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN &&
		    !v->finalized)
			return "finalize";
		return NULL;
	}
}

static json_t *host_status(const struct drv_seq *s, const struct seq_svc *v)
{
	json_t *arr = json_array();

	for (uint32_t i = 0; arr != NULL && i < v->n; i++) {
		const struct seq_host *h = &v->hosts[i];

		json_array_append_new(arr,
		                      json_pack("{sssssssssssb}", "agent", seq_agent(s, h->agent),
		                                "prestage", st_names[h->st[K_PRESTAGE]], "start",
		                                st_names[h->st[K_START]], "rollback",
		                                st_names[h->st[K_ROLLBACK]], "finalize",
		                                st_names[h->st[K_FINALIZE]], "unhealthy",
		                                (h->flags & HF_UNHEALTHY) != 0));
	}
	return arr;
}

/* Blue-green across sets: which set this release went to, which one was
 * live, which one takes the traffic now, and the old set's hosts. */
static json_t *sets_status(const struct drv_seq *s, const struct seq_svc *v)
{
	const char *live = drv_seq_live_set(s, v->index);
	json_t *old = json_array();

	for (uint32_t j = 0; old != NULL && j < v->live.n; j++)
		json_array_append_new(old,
		                      json_pack("{ssss}", "agent", seq_agent(s, v->live.agents[j]),
		                                "decommission", st_names[v->live.st[j]]));
	if (live == NULL) /* nothing switched yet: the old set serves (if any did) */
		live = v->set_first ? NULL : seq_set_name(v, false);
	return json_pack("{sssssbsoso}", "new", seq_set_name(v, true), "old",
	                 seq_set_name(v, false), "first", v->set_first, "live",
	                 live ? json_string(live) : json_null(), "old_hosts",
	                 old ? old : json_array());
}

static json_t *svc_status(const struct drv_seq *s, const struct seq_svc *v, bool hosts)
{
	const struct drv_plan_strategy *st = &v->ps->strategy;
	uint32_t per = drv_plan_amount_of(st->max_unavailable, v->n, false);
	json_int_t steps = st->type == DRV_STRATEGY_CANARY ? (json_int_t)st->n_steps
	                   : st->type == DRV_STRATEGY_BLUEGREEN
	                           ? 1
	                           : (v->n + (per ? per : 1) - 1) / (per ? per : 1);
	json_t *o = json_pack(
	        "{sssssssIsIsIsIsIsIsIss*ss*}", "name", v->ps->name, "strategy",
	        drv_plan_strategy_name(st->type), "state", svc_state_names[v->state], "hosts",
	        (json_int_t)v->n, "started", (json_int_t)v->cursor, "ok", (json_int_t)v->ok,
	        "failed", (json_int_t)v->failed, "rolled_back", (json_int_t)v->rb_ok, "step",
	        (json_int_t)(st->type == DRV_STRATEGY_CANARY ? v->step + (v->state != SVC_DONE)
	                                                     : v->step),
	        "steps", steps, "waiting", svc_waiting(v), "why", v->why[0] ? v->why : NULL);

	if (o != NULL && st->type == DRV_STRATEGY_CANARY && v->step < st->n_steps)
		json_object_set_new(o, "percent", json_integer(st->steps[v->step]));
	if (o != NULL && hosts)
		json_object_set_new(o, "host_list", host_status(s, v));
	if (o != NULL && seq_sets(v))
		json_object_set_new(o, "sets", sets_status(s, v));
	if (o != NULL && seq_check_at(&v->ps->analysis, v->an_check) != NULL &&
	    (v->op == OP_CHECK || v->an_hold || v->an_retry || v->an_fails > 0))
		json_object_set_new(o, "analysis",
		                    json_pack("{sssIsb}", "check",
		                              seq_check_at(&v->ps->analysis, v->an_check)->name,
		                              "failures", (json_int_t)v->an_fails, "inconclusive",
		                              v->an_hold));
	return o;
}

static const char *tier_state(const struct drv_seq *s, size_t t)
{
	const struct drv_plan_tier *tier = &s->plan->tiers[t];
	bool any = false, all_done = true, all_rb = true;

	for (size_t i = tier->first; i < tier->first + tier->n; i++) {
		uint8_t st = s->svcs[i].state;

		any |= st != SVC_PENDING;
		all_done &= st == SVC_DONE;
		all_rb &= st == SVC_RB_DONE || st == SVC_PENDING;
	}
	if (!any)
		return "pending";
	if (all_rb)
		return "rolled_back";
	return all_done ? "done" : "running";
}

static json_t *hooks_status(const struct seq_hook *k, const struct drv_plan_hook *h, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < n; i++) {
		const char *state = "pending";
		bool all_ok = k[i].n > 0, down = k[i].n > 0;

		for (uint32_t j = 0; j < k[i].n; j++) {
			all_ok &= k[i].st[j] == ST_OK;
			down &= k[i].st2[j] == ST_OK;
			if (k[i].st[j] == ST_SENT || k[i].st2[j] == ST_SENT)
				state = "running";
			else if (ST_BAD(k[i].st[j]) || ST_BAD(k[i].st2[j]))
				state = "failed";
		}
		if (down)
			state = "down";
		else if (all_ok && strcmp(state, "pending") == 0)
			state = "done";
		json_array_append_new(arr, json_pack("{ssss}", "name", h[i].name, "state", state));
	}
	return arr;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= ((const unsigned char *)p)[i];
		h *= 1099511628211ULL;
	}
	return h;
}

#define FNV(h, v) fnv((h), &(v), sizeof(v))

uint64_t drv_seq_progress_stamp(const struct drv_seq *s)
{
	uint64_t h = FNV(1469598103934665603ULL, s->state);

	h = FNV(h, s->paused);
	h = FNV(h, s->tier);
	h = FNV(h, s->failed_hosts);
	h = FNV(h, s->total_hosts);
	h = fnv(h, s->reason, strlen(s->reason));
	for (size_t i = 0; i < s->plan->n_services; i++) {
		const struct seq_svc *v = &s->svcs[i];

		h = FNV(h, v->state); /* also what "waiting" reads: */
		h = FNV(h, v->wait);
		h = FNV(h, v->op);
		h = FNV(h, v->finalized);
		h = FNV(h, v->step); /* "step" and "percent" */
		h = FNV(h, v->n);    /* "steps" */
	}
	return h;
}

json_t *drv_seq_status(const struct drv_seq *s, bool hosts)
{
	const struct drv_plan *p = s->plan;
	json_t *o, *tiers = json_array();

	for (size_t t = 0; tiers != NULL && t < p->n_tiers; t++) {
		json_t *svcs = json_array();

		for (size_t i = p->tiers[t].first; svcs && i < p->tiers[t].first + p->tiers[t].n;
		     i++)
			json_array_append_new(svcs, svc_status(s, &s->svcs[i], hosts));
		json_array_append_new(tiers,
		                      json_pack("{sssssO}", "name", p->tiers[t].name, "state",
		                                tier_state(s, t), "services", svcs));
		json_decref(svcs);
	}
	o = json_pack("{sssssssssbss*sIsIsIsIs{sososo}so}", "id", s->id, "deployment",
	              p->deployment, "version", p->version, "state", drv_seq_state_name(s->state),
	              "paused", s->paused, "reason", s->reason[0] ? s->reason : NULL, "hosts",
	              (json_int_t)s->total_hosts, "failed_hosts", (json_int_t)s->failed_hosts,
	              "started_at", (json_int_t)s->started_at, "ended_at", (json_int_t)s->ended_at,
	              "hooks", "pre", hooks_status(s->pre, p->pre, p->n_pre), "migrations",
	              hooks_status(s->mig, p->migrations, p->n_migrations), "post",
	              hooks_status(s->post, p->post, p->n_post), "tiers", tiers);
	if (o != NULL && s->state == DRV_SEQ_TIERS)
		json_object_set_new(o, "tier", json_string(p->tiers[s->tier].name));
	if (o != NULL && s->state == DRV_SEQ_TIERS && s->bake_until > 0 && !s->baked)
		json_object_set_new(o, "bake_until", json_integer(s->bake_until));
	return o;
}
