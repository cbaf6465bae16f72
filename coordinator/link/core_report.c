/* core_report.c: the Report message, and a batch's reports written once for
 * the batch. */
#include "core.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "core_int.h"
#include "err.h"
#include "hello.h"
#include "linkstats.h"
#include "log.h"
#include "logs.h"
#include "report_metrics.h"
#include "storage.h"
#include "wire_names.h"

static json_t *report_json(const Drover__Report *r)
{
	char tail[OUTPUT_TAIL_STORED + 1];
	json_t *valid;

	snprintf(tail, sizeof(tail), "%s", r->output_tail ? r->output_tail : "");
	valid = json_string(tail); /* NULL if the cut (or the agent) broke UTF-8 */
	json_decref(valid);
	return json_pack("{s:s?, s:s?, s:I, s:s, s:s?, s:i, s:s?, s:s?, s:I, s:I}", "step_id",
	                 r->step_id, "deployment_id", r->deployment_id, "instruction_seq",
	                 (json_int_t)r->instruction_seq, "result", drv_step_result_name(r->result),
	                 "message", r->message, "exit_code", (int)r->exit_code, "output_tail",
	                 valid ? tail : NULL, "service", r->service, "duration_ms",
	                 (json_int_t)r->duration_ms, "report_seq", (json_int_t)r->report_seq);
}

static const char *report_deployment(const Drover__Report *r)
{
	return r->deployment_id != NULL && drv_agent_id_valid(r->deployment_id) ? r->deployment_id
	                                                                        : "";
}

/* The releases a report carries, merged into its agent's row. */
static int report_releases(struct core *c, struct agent_rt *a, const Drover__Report *r)
{
	char *rel;
	int rc;

	if (r->n_releases == 0 || r->service == NULL || r->service[0] == '\0' ||
	    r->n_releases > HELLO_RELEASES_MAX)
		return DRV_OK;
	rel = hello_releases_json(r->releases, r->n_releases);
	if (rel == NULL)
		return DRV_ENOMEM;
	rc = store_agent_merge_releases(c->cfg.store, a->id, r->service, rel, r->report_seq, NULL);
	free(rel);
	return rc;
}

/* The report's event row (under its deployment, so that a restarted
 * droverd can replay what its sequencer had not yet saved) and the
 * releases it carries. */
static int record_report(struct core *c, struct agent_rt *a, const Drover__Report *r)
{
	json_t *data = report_json(r);
	int rc = drv_events_insert(store_db(c->cfg.store), "report", report_deployment(r), a->id,
	                           data, NULL);

	json_decref(data);
	return rc == DRV_OK ? report_releases(c, a, r) : rc;
}

/* The event row of a report written with its batch (drv_events_insert_rows:
 * [deployment, agent, data]), made before the core lock is taken. NULL:
 * the report is written on its own (record_report), e.g. one too big for
 * an event, which that way is refused as before. */
static char *report_event_row(const Drover__Report *r)
{
	json_t *data = report_json(r);
	json_t *row = data != NULL ? json_pack("[s, s, o]", report_deployment(r), r->agent_id, data)
	                           : NULL;
	char *text = row != NULL ? json_dumps(row, JSON_COMPACT) : NULL;

	json_decref(row);
	if (text != NULL && strlen(text) > DRV_EVENT_DATA_MAX) {
		free(text);
		return NULL;
	}
	return text;
}

static bool acknowledges(const Drover__Report *r)
{
	return r->instruction_seq > 0 && r->result >= DROVER__STEP_RESULT__STEP_ACCEPTED &&
	       r->result <= DROVER__STEP_RESULT__STEP_FAILED;
}

/* Replay check, acknowledgement, event and releases in one transaction (one
 * commit, not four): a report that was acknowledged is never lost by a
 * crash of droverd. *acked: the acknowledgement was written. */
static int report_store(struct core *c, struct agent_rt *a, const Drover__Report *r, bool *acked)
{
	uint64_t upto =
	        acknowledges(r) && r->instruction_seq > a->acked_seq ? r->instruction_seq : 0;
	size_t n = 0;
	int rc = store_begin(c->cfg.store);

	if (rc != DRV_OK)
		return rc;
	/* replay check and acknowledgement in one write of the agent's row */
	rc = store_agent_report(c->cfg.store, a->id, r->report_seq, upto, drv_wall_ms(), &n);
	if (rc == DRV_OK && upto > 0) {
		*acked = true;
		core_acked_note(a, upto, n);
	}
	if (rc == DRV_OK)
		rc = record_report(c, a, r);
	if (rc == DRV_OK)
		rc = store_commit(c->cfg.store);
	else
		store_rollback(c->cfg.store);
	if (rc == DRV_OK)
		core_notify_events(c);
	if (rc == DRV_EDB)
		drv_storage_suspect(); /* a full or read-only disk? (not acknowledged: resent) */
	return rc;
}

/* The report's rows are left for its batch's write (core_reports_flush): its
 * agent's row, the instructions it acknowledges and its event, each one
 * statement for the whole batch. */
static int report_defer(struct core *c, struct agent_rt *a, struct owed *o)
{
	const Drover__Report *r = (const Drover__Report *)o->body;

	if (!a->report_pending) {
		if (c->n_rep == c->cap_rep) {
			size_t cap = c->cap_rep ? 2 * c->cap_rep : 256;
			struct agent_rt **v = realloc(c->rep_agents, cap * sizeof(*v));

			if (v == NULL)
				return DRV_ENOMEM;
			c->rep_agents = v;
			c->cap_rep = cap;
		}
		c->rep_agents[c->n_rep++] = a;
		a->report_pending = true;
		a->batch_ack = 0;
		a->batch_acked = 0;
	}
	if (acknowledges(r) && r->instruction_seq > a->acked_seq &&
	    r->instruction_seq > a->batch_ack)
		a->batch_ack = r->instruction_seq;
	a->batch_rs = a->report_seq = r->report_seq;
	o->agent = a;
	o->deferred = true;
	c->n_deferred++;
	core_notify_events(c);
	return DRV_OK;
}

/* The report joins the open batch and its answer waits for the batch's
 * commit (report_done): the Ack says "saved". Nothing waits here, so the
 * reports of a fan-out share a commit by the hundred. A report above the
 * agent's highest report_seq (in memory) is written with its batch; one
 * that is not (a replay, or an agent whose row changed) is written at once
 * by report_store, whose statement checks against the store. */

static int report_locked(struct core *c, struct agent_rt *a, struct owed *o)
{
	const Drover__Report *r = (const Drover__Report *)o->body;
	bool acked = false;
	int rc = gcommit_join(&c->gc);

	if (rc != DRV_OK)
		return rc;
	if (o->event_row == NULL || r->report_seq <= a->report_seq ||
	    report_defer(c, a, o) != DRV_OK) {
		rc = report_store(c, a, r, &acked);
		if (rc != DRV_OK)
			return rc;
		if (!a->report_pending || r->report_seq > a->report_seq)
			a->report_seq = r->report_seq;
		if (acked && r->instruction_seq > a->acked_seq)
			a->acked_seq = r->instruction_seq;
	}
	core_mark_seen(c, a, o->pipe);
	core_owe(c, o);
	if (c->n_deferred >= REPORTS_WRITE_AT)
		core_reports_flush(c);
	return DRV_OK;
}

/* ---- a batch's reports, written once for the batch ---- */

static void report_acked(void *arg, const char *agent_id)
{
	struct core *c = arg;
	struct agent_rt *a = registry_get(c->reg, agent_id);

	if (a != NULL)
		a->batch_acked++;
}

/* [[agent, report_seq, acked], ...] of the batch's agents (ids are
 * [A-Za-z0-9._-]: nothing to escape), or NULL. acked is 0 where a Poll
 * acknowledged as much meanwhile; *acks: some row's is not. */
static char *report_agent_rows(struct core *c, bool *acks)
{
	size_t cap = c->n_rep * (DRV_AGENT_ID_MAX + 48) + 3, len = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		return NULL;
	buf[len++] = '[';
	for (size_t i = 0; i < c->n_rep; i++) {
		const struct agent_rt *a = c->rep_agents[i];
		uint64_t ack = a->batch_ack > a->acked_seq ? a->batch_ack : 0;

		*acks |= ack > 0;
		len += (size_t)snprintf(buf + len, cap - len, "%s[\"%s\",%" PRIu64 ",%" PRIu64 "]",
		                        i > 0 ? "," : "", a->id, a->batch_rs, ack);
	}
	buf[len++] = ']';
	buf[len] = '\0';
	return buf;
}

/* The event rows of the batch's reports, in the order they came. */
static char *report_event_rows(struct core *c)
{
	size_t cap = 3, len = 0;
	char *buf;

	for (struct owed *o = c->owed; o != NULL; o = o->next)
		cap += o->deferred ? strlen(o->event_row) + 1 : 0;
	if ((buf = malloc(cap)) == NULL)
		return NULL;
	buf[len++] = '[';
	for (struct owed *o = c->owed; o != NULL; o = o->next) {
		size_t n;

		if (!o->deferred)
			continue;
		if (len > 1)
			buf[len++] = ',';
		n = strlen(o->event_row);
		memcpy(buf + len, o->event_row, n);
		len += n;
	}
	buf[len++] = ']';
	buf[len] = '\0';
	return buf;
}

/* Inside a savepoint of the batch: every deferred report's rows. */
static int reports_write(struct core *c)
{
	bool acks = false;
	char *rows = report_agent_rows(c, &acks), *events = NULL;
	int rc = rows != NULL ? DRV_OK : DRV_ENOMEM;

	if (rc == DRV_OK)
		rc = store_agent_reports(c->cfg.store, rows, c->n_rep, acks, drv_wall_ms(),
		                         report_acked, c);
	for (struct owed *o = c->owed; o != NULL && rc == DRV_OK; o = o->next) {
		if (o->deferred)
			rc = report_releases(c, o->agent, (const Drover__Report *)o->body);
	}
	if (rc == DRV_OK && (events = report_event_rows(c)) == NULL)
		rc = DRV_ENOMEM;
	if (rc == DRV_OK)
		rc = drv_events_insert_rows(store_db(c->cfg.store), "report", events);
	free(rows);
	free(events);
	return rc;
}

/* The batch's write failed (a report that fails on its own, a replay the
 * memory did not know of): each report is written on its own, as before,
 * so that only the one that fails is refused (its rc; the others are
 * acknowledged with the batch). */
static void reports_one_by_one(struct core *c)
{
	struct store_agent sa;

	for (struct owed *o = c->owed; o != NULL; o = o->next) {
		const Drover__Report *r = (const Drover__Report *)o->body;
		bool acked = false;

		if (!o->deferred)
			continue;
		o->rc = report_store(c, o->agent, r, &acked);
		if (o->rc == DRV_OK && acked && r->instruction_seq > o->agent->acked_seq)
			o->agent->acked_seq = r->instruction_seq;
	}
	for (size_t i = 0; i < c->n_rep; i++) {
		struct agent_rt *a = c->rep_agents[i];

		if (store_agent_get(c->cfg.store, a->id, &sa) == DRV_OK)
			a->report_seq = sa.report_seq;
	}
}

/* Before-commit hook (core lock), and every REPORTS_WRITE_AT reports: the
 * rows of the batch's deferred reports so far. */
void core_reports_flush(void *arg)
{
	struct core *c = arg;
	int rc;

	if (c->n_deferred == 0)
		return;
	rc = store_begin(c->cfg.store); /* a savepoint: a failure undoes only this */
	if (rc == DRV_OK) {
		rc = reports_write(c);
		if (rc == DRV_OK)
			rc = store_commit(c->cfg.store);
		else
			store_rollback(c->cfg.store);
	}
	if (rc != DRV_OK) {
		drv_warn("core", "a batch's reports written one by one", "reports=%zu error=%s",
		         c->n_deferred, drv_strerror(rc));
		reports_one_by_one(c);
	}
	for (size_t i = 0; i < c->n_rep; i++) {
		struct agent_rt *a = c->rep_agents[i];

		if (rc == DRV_OK && a->batch_ack > 0) {
			core_acked_note(a, a->batch_ack, a->batch_acked);
			if (a->batch_ack > a->acked_seq)
				a->acked_seq = a->batch_ack;
		}
		a->report_pending = false;
		a->batch_rs = a->batch_ack = 0;
		a->batch_acked = 0;
	}
	for (struct owed *o = c->owed; o != NULL; o = o->next)
		o->deferred = false;
	c->n_rep = 0;
	c->n_deferred = 0;
}

/* Its batch committed: the deployment engine hears of the report. */
static void report_committed(struct core *c, const Drover__Report *r)
{
	drv_linkstats_inc(DRV_STAT_REPORTS);
	drv_info("core", "report", "agent=%s report_seq=%" PRIu64 " step=%s result=%s", r->agent_id,
	         r->report_seq, r->step_id ? r->step_id : "", drv_step_result_name(r->result));
	drv_report_metrics_observe(r);
	if (link_logs_offer(c->logs, r->agent_id, r))
		return; /* a log read's answer, not a deployment's step */
	if (c->hooks.on_report != NULL)
		c->hooks.on_report(c->hooks.arg, r->agent_id, r);
}

/* The Ack of a report, or the Reject if it was not saved (the agent sends
 * it again). */
static void report_answer(struct core *c, const Drover__Report *r, int rc, struct core_reply *out)
{
	Drover__Ack ack = DROVER__ACK__INIT;

	if (rc != DRV_OK) {
		core_reject(c, out, rc, r->report_seq, r->agent_id,
		            rc == DRV_EREPLAY ? "report already processed" : "report");
		return;
	}
	ack.seq = r->report_seq;
	ack.step_id = r->step_id;
	core_bind_to(out, &ack.agent_id, &ack.request_hash);
	core_seal_reply(c, DROVER__BODY_TYPE__BODY_ACK, &ack.base, out);
}

static void report_saved(struct core *c, struct owed *o, int rc)
{
	if (rc == DRV_OK)
		report_committed(c, (const Drover__Report *)o->body);
}

static void report_done(struct core *c, struct owed *o, int rc)
{
	report_answer(c, (const Drover__Report *)o->body, rc, &o->reply);
}

void core_handle_report(struct core *c, const Drover__Envelope *env, uint32_t pipe,
                        struct core_waiter *w, struct core_reply *out)
{
	struct owed *o = core_owed_new(w, out, pipe, report_saved, report_done);
	struct agent_rt *a;
	const char *why = "";
	int rc;

	if (o == NULL) {
		core_reject(c, out, DRV_ENOMEM, 0, env->sender, "out of memory");
		return;
	}
	rc = core_open_from_agent(c, env, DROVER__BODY_TYPE__BODY_REPORT, &o->body, &why);
	if (rc != DRV_OK) {
		core_reject(c, out, rc, 0, env->sender, why);
		core_owed_free(o);
		return;
	}
	const Drover__Report *r = (const Drover__Report *)o->body;
	if (strcmp(r->agent_id, env->sender) != 0 || r->report_seq == 0) {
		core_reject(c, out, DRV_EDECODE, 0, env->sender,
		            "report names another agent or no seq");
		core_owed_free(o);
		return;
	}
	o->event_row = report_event_row(r); /* outside the lock */
	gcommit_lock(&c->gc);
	a = core_accepted(c, env->sender);
	rc = a != NULL ? report_locked(c, a, o) : DRV_EPERM;
	gcommit_unlock(&c->gc); /* o (and r) may be answered and gone from here on */
	if (rc == DRV_OK) {
		out->parked = true;
		return;
	}
	report_answer(c, r, rc, out); /* not stored: answered now */
	core_owed_free(o);
}
