/* core_deliver.c: delivery: a parked poll gets its agent's next instruction,
 * acknowledgements, and the Poll message. */
#include "core.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "core_int.h"
#include "err.h"
#include "ha.h"
#include "hello.h"
#include "linkstats.h"
#include "log.h"

/* ---- delivery ---- */

void core_unpark(struct agent_rt *a, uint8_t *env, size_t len)
{
	struct core_waiter *w = a->parked;

	a->parked = NULL;
	if (w != NULL)
		w->deliver(w, env, len);
	else
		free(env);
}

/* An instruction queued under an older epoch (by the previous leader, before
 * a failover) is signed again under ours: the agent has seen ours and would
 * refuse it. Same body, same sequence number and step id. */
static void restamp(struct core *c, uint8_t **env, size_t *len)
{
	uint64_t epoch = drv_ha_wire_epoch();
	Drover__Envelope *e;
	uint8_t *out;
	size_t out_len;
	bool old;

	if (epoch == 0 || drv_env_parse(*env, *len, DRV_ENV_MAX, &e) != DRV_OK)
		return;
	old = e->epoch != epoch;
	drv_env_free(e);
	if (!old || drv_env_reseal(c->cfg.key, *env, *len, epoch, &out, &out_len) != DRV_OK)
		return;
	free(*env);
	*env = out;
	*len = out_len;
}

/* Nothing deliverable for a: the store said so at its last take
 * (a->idle_gen), or the last one taken was the only one and a has
 * acknowledged it since (a->taken_*: acked_seq rose to it after the take,
 * which acknowledged the row in the same write). A Poll that follows a report then costs no
 * statement under the core lock. Whatever may make a row deliverable again
 * forgets this: an instruction queued for a (core_forget_idle), a batch that
 * failed to commit (an acknowledgement rolled back), a store sync, a new
 * lease epoch (another node led meanwhile): the last three by a new
 * c->idle_gen. Otherwise rows only leave the deliverable set (acked,
 * expired, deleted). */
static bool known_idle(struct core *c, const struct agent_rt *a)
{
	uint64_t epoch = drv_ha_wire_epoch();

	if (epoch != c->idle_epoch) {
		c->idle_epoch = epoch;
		c->idle_gen++;
	}
	if (a->idle_gen == c->idle_gen)
		return true;
	return a->taken_gen == c->idle_gen && a->acked_seq >= a->taken_seq;
}

void core_forget_idle(struct agent_rt *a)
{
	a->idle_gen = 0;
	a->taken_gen = 0;
}

/* A row was taken for a: known_idle may skip a's next take. Below the
 * agent's floor (take_next): the floor, written before, does not say that
 * this row was acknowledged. */
static void taken_note(struct core *c, struct agent_rt *a, const struct store_instr *in)
{
	a->taken_seq = in->seq;
	a->taken_gen = in->more || in->seq <= a->acked_seq ? 0 : c->idle_gen;
}

/* in, taken for a, leaves: counted, logged at level (a resend always at
 * info), its envelope moved to *env and stamped with our epoch. */
static void sending(struct core *c, struct agent_rt *a, struct store_instr *in,
                    enum drv_log_level level, uint8_t **env, size_t *len)
{
	/* Below the floor the agent applied: the old leader sent it and was
	 * killed before its 'sent' mark committed (or a store restored from a
	 * backup). The agent answers from its records; its next Poll must write the
	 * acknowledgement again, although it repeats an applied_seq the store
	 * has: else the row stays 'sent', is resent at every Poll until it
	 * expires, and holds back every later instruction of the agent. */
	if (in->seq <= a->acked_seq)
		a->resent_applied = true;
	drv_linkstats_inc(in->sent_count == 0 ? DRV_STAT_INSTR_SENT : DRV_STAT_INSTR_RESENT);
	drv_linkstats_inc(DRV_STAT_TX_MESSAGES);
	drv_log(in->sent_count == 0 ? level : DRV_LOG_INFO, "core",
	        in->sent_count == 0 ? "instruction sent" : "instruction resent",
	        "agent=%s seq=%" PRIu64 " step=%s sent_before=%" PRId64, a->id, in->seq,
	        in->step_id, in->sent_count);
	*env = in->env;
	*len = in->env_len;
	in->env = NULL;
	restamp(c, env, len);
}

/* The agent's next instruction, marked sent (one statement when the batch
 * is open; with none open, a read first, so that a Poll with nothing to
 * take opens no transaction); DRV_ENOENT if none. */
static int take_row(struct core *c, struct agent_rt *a, struct store_instr *in)
{
	int64_t now = drv_wall_ms();
	int rc;

	if (!gcommit_is_open(&c->gc)) {
		rc = store_instr_next(c->cfg.store, a->id, now, in);
		if (rc != DRV_OK)
			goto out;
		store_instr_clear(in);
	}
	gcommit_join(&c->gc); /* promises nothing: batched with what else is written */
	rc = store_instr_take(c->cfg.store, a->id, now, in);
	if (rc == DRV_OK)
		taken_note(c, a, in);
out:
	if (rc == DRV_ENOENT)
		a->idle_gen = c->idle_gen;
	return rc;
}

/* The agent's next instruction, marked sent; DRV_ENOENT if none. */
static int take_next(struct core *c, struct agent_rt *a, uint8_t **env, size_t *len)
{
	struct store_instr in;
	int rc;

	if (!drv_ha_is_leader())
		return DRV_ENOENT; /* a node that lost its lease sends nothing more */
	if (known_idle(c, a))
		return DRV_ENOENT;
	rc = take_row(c, a, &in);
	if (rc != DRV_OK)
		return rc;
	sending(c, a, &in, DRV_LOG_INFO, env, len);
	store_instr_clear(&in);
	return DRV_OK;
}

/* An instruction queued in the open batch is sent only once the batch
 * committed (core_after_commit delivers it): never one a crash could take back. */
void core_deliver_if_parked(struct core *c, struct agent_rt *a)
{
	uint8_t *env;
	size_t len;

	if (a->parked == NULL || a->uncommitted)
		return;
	if (take_next(c, a, &env, &len) == DRV_OK)
		core_unpark(a, env, len);
}

/* The parked agents of a committed batch, delivered together
 * (core_deliver_parked): one statement takes each one's next row. */
struct parked_set {
	struct core *c;
	size_t sent, resent;
};

static void parked_taken(void *arg, const char *agent_id, struct store_instr *in)
{
	struct parked_set *ps = arg;
	struct agent_rt *a = registry_get(ps->c->reg, agent_id);
	uint8_t *env;
	size_t len;

	if (a == NULL || a->parked == NULL)
		return; /* not asked for: the row stays sent, resent at its next Poll */
	taken_note(ps->c, a, in);
	if (in->sent_count == 0)
		ps->sent++;
	else
		ps->resent++;
	sending(ps->c, a, in, DRV_LOG_DEBUG, &env, &len);
	core_unpark(a, env, len);
}

/* Whether a parked agent's next row is worth a take (take_next's checks
 * but the leader's, made once for all). */
static bool parked_wants(struct core *c, const struct agent_rt *a)
{
	return a->parked != NULL && !a->uncommitted && !known_idle(c, a);
}

/* The agents' ids as a JSON array; *k: how many. */
static char *agents_json(struct agent_rt *const *v, size_t n, size_t *k)
{
	json_t *ids = json_array();
	char *text = NULL;

	*k = 0;
	for (size_t i = 0; ids != NULL && i < n; i++)
		if (json_array_append_new(ids, json_string(v[i]->id)) == 0)
			(*k)++;
	if (*k > 0)
		text = json_dumps(ids, JSON_COMPACT);
	json_decref(ids);
	return text;
}

/* core_deliver_if_parked for each of v (a committed batch's agents): one
 * statement marks every parked one's next row sent, then each is sent, with
 * one log line for all (a line per agent at debug). Only committed rows are
 * there to take (an agent with rows in an open batch is skipped), and each
 * agent gets its lowest deliverable row, as its Poll would. */
void core_deliver_parked(struct core *c, struct agent_rt **v, size_t n)
{
	struct parked_set ps = {.c = c};
	struct agent_rt **want = NULL;
	size_t k = 0, listed;
	char *ids = NULL;
	int rc = DRV_EDB;

	if (!drv_ha_is_leader())
		return; /* a node that lost its lease sends nothing more */
	if (n > 1)
		want = malloc(n * sizeof(*want));
	for (size_t i = 0; want != NULL && i < n; i++)
		if (parked_wants(c, v[i]))
			want[k++] = v[i];
	if (want != NULL && k > 1)
		ids = agents_json(want, k, &listed);
	if (ids != NULL && listed == k && gcommit_join(&c->gc) == DRV_OK)
		rc = store_instr_take_many(c->cfg.store, ids, drv_wall_ms(), parked_taken, &ps);
	if (rc == DRV_OK) {
		for (size_t i = 0; i < k; i++)
			if (want[i]->parked != NULL) /* nothing deliverable: as take_row says */
				want[i]->idle_gen = c->idle_gen;
		if (ps.sent + ps.resent > 0)
			drv_info("core", "instructions sent", "agents=%zu sent=%zu resent=%zu", k,
			         ps.sent, ps.resent);
	} else if (rc != DRV_EFENCED) {
		/* one by one (one agent, no memory, or the statement failed) */
		for (size_t i = 0; i < n; i++)
			core_deliver_if_parked(c, v[i]);
	}
	free(ids);
	free(want);
}

/* Record that the agent applied everything up to `applied`. Every Poll and
 * Report repeats the agent's highest sequence: only a higher one than the
 * store already has is written (a->acked_seq; the caller sets it once the
 * write is committed). A Hello always writes: after a restore from an old
 * backup the store's next_seq may lag behind what the agent applied. */
void core_acked_note(const struct agent_rt *a, uint64_t applied, size_t n)
{
	if (n == 0)
		return;
	drv_linkstats_add(DRV_STAT_INSTR_ACKED, n);
	drv_info("core", "instructions acknowledged", "agent=%s upto=%" PRIu64 " count=%zu", a->id,
	         applied, n);
}

static bool ack_upto_nosync(struct core *c, struct agent_rt *a, uint64_t applied, bool always)
{
	size_t n = 0;
	int rc;

	if (applied == 0 || (applied <= a->acked_seq && !always))
		return false;
	gcommit_join(&c->gc); /* a Poll's promises nothing (a Report waits for its commit) */
	rc = store_instr_ack_upto(c->cfg.store, a->id, applied, drv_wall_ms(), &n);
	if (rc == DRV_OK)
		core_acked_note(a, applied, n);
	return rc == DRV_OK; /* else written again with the next message */
}

void core_ack_upto(struct core *c, struct agent_rt *a, uint64_t applied, bool always)
{
	if (ack_upto_nosync(c, a, applied, always) && applied > a->acked_seq)
		a->acked_seq = applied;
}

static void poll_locked(struct core *c, struct agent_rt *a, const Drover__Poll *p, uint32_t pipe,
                        struct core_waiter *w, struct core_reply *out)
{
	/* The first Poll of a connection may come before (or instead of) a
	 * Hello: NNG resends a pending request on the new pipe after droverd
	 * restarts. Write its sequence floor as a Hello would, so a store
	 * restored from an old backup catches up with what the agent applied.
	 * Likewise after take_next() sent one the agent had applied. */
	bool again = !a->connected || a->pipe != pipe || a->resent_applied;

	a->resent_applied = false; /* set again if the row is resent */
	core_mark_seen(c, a, pipe);
	core_ack_upto(c, a, p->applied_seq, again);
	if (!a->uncommitted && take_next(c, a, &out->env, &out->len) == DRV_OK)
		return;
	if (a->parked != NULL)
		core_unpark(a, NULL, 0); /* replaced by this newer poll */
	a->parked = w;
	a->parked_pipe = pipe;
	memcpy(a->parked_hash, out->req_hash, sizeof(a->parked_hash));
	a->parked_until_mono = drv_mono_ms() + c->cfg.poll_timeout_ms;
	out->parked = true;
}

/* What the agent runs now (drift), when its Poll carries it. Core lock. */
static void poll_releases_locked(struct core *c, struct agent_rt *a, const Drover__Poll *p)
{
	bool stale = false;
	char *rel;

	if (!hello_releases_ok(p->releases, p->n_releases)) {
		drv_warn("core", "poll releases refused", "agent=%s", a->id);
		return;
	}
	/* A Poll sealed before a Report that changed the list can come after
	 * it: its list (releases_seq below the stored one) is not stored. */
	rel = hello_releases_json(p->releases, p->n_releases);
	if (rel != NULL && gcommit_join(&c->gc) == DRV_OK &&
	    store_agent_set_releases(c->cfg.store, a->id, rel, p->releases_seq, &stale) != DRV_OK)
		drv_warn("core", "cannot store the releases of a poll", "agent=%s", a->id);
	else if (stale)
		drv_info("core", "older releases of a poll ignored",
		         "agent=%s releases_seq=%" PRIu64, a->id, p->releases_seq);
	free(rel);
}

void core_handle_poll(struct core *c, const Drover__Envelope *env, uint32_t pipe,
                      struct core_waiter *w, struct core_reply *out)
{
	Drover__Poll *p = NULL;
	struct agent_rt *a;
	const char *why = "";
	int64_t now = drv_wall_ms();
	int rc;

	rc = core_open_from_agent(c, env, DROVER__BODY_TYPE__BODY_POLL, (ProtobufCMessage **)&p,
	                          &why);
	if (rc != DRV_OK) {
		core_reject(c, out, rc, 0, env->sender, why);
		return;
	}
	if (strcmp(p->agent_id, env->sender) != 0)
		rc = DRV_EDECODE, why = "poll names another agent";
	else if (now - p->sent_at_ms > c->cfg.skew_ms + c->cfg.poll_timeout_ms)
		rc = DRV_EEXPIRED, why = "stale poll";
	else if (p->sent_at_ms - now > c->cfg.skew_ms)
		rc = DRV_EFUTURE, why = "poll from the future";
	if (rc != DRV_OK) {
		core_reject(c, out, rc, 0, env->sender, why);
		drv_msg_free(&p->base);
		return;
	}
	drv_linkstats_inc(DRV_STAT_POLLS);
	gcommit_lock(&c->gc);
	a = core_accepted(c, env->sender);
	if (a != NULL && p->has_releases)
		poll_releases_locked(c, a, p);
	if (a != NULL)
		poll_locked(c, a, p, pipe, w, out);
	gcommit_unlock(&c->gc);
	if (a == NULL)
		core_reject(c, out, DRV_EPERM, 0, env->sender, "agent not accepted");
	drv_msg_free(&p->base);
}
