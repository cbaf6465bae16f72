/*
 * strategy_bluegreen.c: blue-green switches. The new release starts on
 * every host beside the running one, in the other slot (blue on the
 * service's port, green on green_port); each start is health-gated (the
 * verification: any failure fails the service); then the optional metric
 * analysis; then traffic switches to the new slot. The old slot keeps
 * running until finalize_after has passed (or `drover promote` in the
 * finalize phase): the core then sends FINALIZE. Rollback before that
 * switches traffic back and stops the new slot; after it, re-activates the
 * previous release and switches back.
 *
 * The service's Prometheus checks (seq_analysis.c) run before the switch
 * and again after it; a failure after it switches traffic back.
 *
 * Across host sets (strategy.sets) the new release starts on the idle
 * set's hosts (on the service's port, slot ""), the switch moves the
 * weights from the live set's servers to the idle set's, and the old set
 * is stopped (decommissioned) after finalize_after, once the deployment
 * is otherwise done (state finalize). Rollback before that switches
 * traffic back and stops the new set; the old set is not touched. After
 * the decommission there is no old release left running to go back to:
 * such a rollback fails and says so.
 *
 * Sub-states: 0 start, 1 HTTP metric, 5 checks before the switch, 2 switch,
 * 3 switched, 6 checks after the switch (5 and 6 were added later: saved
 * states keep their numbers).
 */
#include "seq_int.h"

static void bluegreen_advance(struct drv_seq *s, struct seq_svc *v)
{
	switch (v->sub) {
	case 0:
		if (s->paused)
			return;
		v->sub = 1;
		seq_wave_begin(s, v, K_START);
		if (seq_sets(v) && v->set_first)
			seq_log(s, "service %s: no set is live yet: set %s goes first (%u host(s))",
			        v->ps->name, seq_set_name(v, true), v->n);
		else if (seq_sets(v))
			seq_log(s,
			        "service %s: set %s is live; deploying to idle set %s (%u host(s))",
			        v->ps->name, seq_set_name(v, false), seq_set_name(v, true), v->n);
		else
			seq_log(s, "service %s: starting the new slot beside the old on %u host(s)",
			        v->ps->name, v->n);
		while (v->cursor < v->n)
			seq_send_host(s, v, v->cursor++, K_START);
		return;
	case 1:
		v->sub = 5;
		if (v->ps->strategy.metric_url != NULL) {
			seq_metric(s, v);
			return;
		}
		/* fall through */
	case 5:
		if (seq_analysis_step(s, v, "before the switch"))
			return;
		/* fall through */
	case 2:
		v->sub = 3;
		seq_log(s, "service %s: new slot verified; switching traffic", v->ps->name);
		seq_traffic(s, v, -1, true);
		return;
	case 3:
		v->switched = true;
		v->sub = 6;
		/* fall through */
	default:
		if (seq_analysis_step(s, v, "after the switch"))
			return;
		seq_svc_done(s, v);
		return;
	}
}

static bool bluegreen_promote(struct drv_seq *s, struct seq_svc *v)
{
	(void)s;
	(void)v;
	return false; /* finalizing early is the core's (it owns the timer) */
}

static uint32_t bluegreen_rb_batch(const struct seq_svc *v)
{
	/* across sets, once the old set is stopped the new one is all there is */
	return seq_sets(v) && v->fin_started ? 0 : v->n;
}

/* Before: traffic back to the old slot if it may have moved. */
static bool bluegreen_rb_before(struct drv_seq *s, struct seq_svc *v)
{
	if (seq_sets(v) && v->fin_started) {
		v->rb_failed++;
		if (s->rb_failures++ == 0 && v->n > 0)
			s->rb_first_fail = v->hosts[0].agent + 1;
		seq_log(s,
		        "service %s: set %s was decommissioned: no old release runs to go back "
		        "to; set %s keeps %s (deploy the previous release again)",
		        v->ps->name, seq_set_name(v, false), seq_set_name(v, true), v->ps->version);
		return false;
	}
	if (v->fin_started || ((v->sub < 3 || v->sub == 5) && !v->switched))
		return false;
	seq_traffic(s, v, -1, false);
	return true;
}

/* After: once finalized, the previous release came back in its old slot. */
static bool bluegreen_rb_after(struct drv_seq *s, struct seq_svc *v)
{
	if (!v->fin_started || seq_sets(v))
		return false;
	seq_traffic(s, v, -1, false);
	return true;
}

const struct seq_strategy seq_bluegreen = {
        .name = "blue-green",
        .advance = bluegreen_advance,
        .promote = bluegreen_promote,
        .rb_batch = bluegreen_rb_batch,
        .rb_before = bluegreen_rb_before,
        .rb_after = bluegreen_rb_after,
};
