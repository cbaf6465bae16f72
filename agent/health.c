/* health.c: health kinds registry, defaults and damping. */
#include "health.h"

static const struct health_kind_ops *const kinds[] = {
        [DROVER__HEALTH_KIND__HEALTH_HTTP] = &health_http_ops,
        [DROVER__HEALTH_KIND__HEALTH_TCP] = &health_tcp_ops,
        [DROVER__HEALTH_KIND__HEALTH_EXEC] = &health_exec_ops,
};

const struct health_kind_ops *health_kind_find(Drover__HealthKind kind)
{
	if ((int)kind <= 0 || (size_t)kind >= sizeof(kinds) / sizeof(kinds[0]))
		return NULL;
	return kinds[kind];
}

static uint32_t or_default(uint32_t v, uint32_t def)
{
	return v ? v : def;
}

void health_params_of(const Drover__HealthCheck *hc, struct health_params *out)
{
	out->initial_delay_ms = hc ? hc->initial_delay_ms : 0;
	out->interval_ms = or_default(hc ? hc->interval_ms : 0, 1000);
	out->timeout_ms = or_default(hc ? hc->timeout_ms : 0, 2000);
	out->healthy_threshold = or_default(hc ? hc->healthy_threshold : 0, 2);
	out->unhealthy_threshold = or_default(hc ? hc->unhealthy_threshold : 0, 3);
	out->deadline_ms = or_default(hc ? hc->deadline_ms : 0, 60000);
}

void health_damper_init(struct health_damper *d, int64_t now_ms)
{
	d->state = HEALTH_UNKNOWN;
	d->ok_run = 0;
	d->bad_run = 0;
	d->since_ms = now_ms;
}

bool health_damper_feed(struct health_damper *d, bool ok, unsigned healthy_threshold,
                        unsigned unhealthy_threshold, int64_t now_ms, int64_t *prev_ms)
{
	enum health_state next = d->state;

	if (ok) {
		d->ok_run++;
		d->bad_run = 0;
		if (d->ok_run >= (healthy_threshold ? healthy_threshold : 1))
			next = HEALTH_UP;
	} else {
		d->bad_run++;
		d->ok_run = 0;
		if (d->bad_run >= (unhealthy_threshold ? unhealthy_threshold : 1))
			next = HEALTH_DOWN;
	}
	if (next == d->state)
		return false;
	*prev_ms = now_ms - d->since_ms;
	d->state = next;
	d->since_ms = now_ms;
	return true;
}

const char *health_state_name(enum health_state s)
{
	return s == HEALTH_UP ? "healthy" : s == HEALTH_DOWN ? "unhealthy" : "unknown";
}

void health_sched_init(struct health_sched *s, const struct health_params *par, int64_t now_ms)
{
	health_damper_init(&s->d, now_ms);
	s->was_up = false;
	s->step_ms = HEALTH_FAST_FIRST_MS;
	s->bad_count_at = -1;
	s->next_at = now_ms + par->initial_delay_ms;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

bool health_sched_feed(struct health_sched *s, const struct health_params *par, bool ok,
                       int64_t now_ms, int64_t *prev_ms)
{
	uint32_t interval = par->interval_ms ? par->interval_ms : 1;
	bool fast = !s->was_up, flipped = false;

	if (fast && !ok && s->bad_count_at >= 0 && now_ms - s->bad_count_at < interval) {
		s->d.ok_run = 0; /* breaks a run of successes, not counted as a failure */
	} else {
		flipped = health_damper_feed(&s->d, ok, par->healthy_threshold,
		                             par->unhealthy_threshold, now_ms, prev_ms);
		if (!ok)
			s->bad_count_at = now_ms;
	}
	if (s->d.state == HEALTH_UP)
		s->was_up = true;
	if (s->was_up) {
		s->next_at = now_ms + interval;
		return flipped;
	}
	if (ok) { /* the run of successes goes on at the interval, as always */
		s->step_ms = HEALTH_FAST_FIRST_MS;
		s->next_at = now_ms + interval;
		return flipped;
	}
	s->next_at = now_ms + min_u32(s->step_ms, interval);
	s->step_ms = s->step_ms > interval / 2 ? interval : s->step_ms * 2;
	return flipped;
}
