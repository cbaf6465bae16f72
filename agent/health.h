/*
 * health.h: health checks. One module per kind (health_http.c, health_tcp.c,
 * health_exec.c) behind an ops table, and the damping logic shared by all:
 * a state flips only after N results in a row (healthy_threshold successes,
 * unhealthy_threshold failures), and each flip carries how long the previous
 * state lasted (relayd's hce.c does the same).
 */
#ifndef DRV_AGENT_HEALTH_H
#define DRV_AGENT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover.pb-c.h"
#include "privs.h"

#define HEALTH_DETAIL_MAX 256

struct health_target {
	const char *host; /* default "127.0.0.1" */
	uint32_t port;    /* the check's port, else the service's */
	const char *cwd;  /* exec checks run here (the release root), may be NULL */
	/* exec checks run as the service's user (no capabilities); when its
	 * user cannot be resolved, privs_err says why and the check fails. */
	const struct privs *privs;
	const char *privs_err;
};

struct health_kind_ops {
	const char *name;
	/* One probe within timeout_ms: true when healthy; detail says what was seen. */
	bool (*probe)(const Drover__HealthCheck *hc, const struct health_target *t,
	              uint32_t timeout_ms, char *detail, size_t detail_size);
};

extern const struct health_kind_ops health_http_ops;

/* What an HTTP health check reads of an answer: headers and body. */
#define HTTP_ANSWER_MAX (64 * 1024 + 8192)
/* Pure: the status of an HTTP/1.x answer (buf need not be terminated) and
 * where its body starts (len when the headers do not end in buf).
 * DRV_EDECODE if buf does not start with a valid status line. */
int health_http_parse(const char *buf, size_t len, unsigned *status, size_t *body_off);
/* Pure: the headers ended and as much body as their Content-Length says. */
bool health_http_complete(const char *buf, size_t len);
extern const struct health_kind_ops health_tcp_ops;
extern const struct health_kind_ops health_exec_ops;

/* NULL for HEALTH_NONE or an unknown kind. */
const struct health_kind_ops *health_kind_find(Drover__HealthKind kind);

/* A HealthCheck with its defaults filled in. */
struct health_params {
	uint32_t initial_delay_ms;    /* default 0 */
	uint32_t interval_ms;         /* default 1000 */
	uint32_t timeout_ms;          /* default 2000 */
	uint32_t healthy_threshold;   /* default 2 */
	uint32_t unhealthy_threshold; /* default 3 */
	uint32_t deadline_ms;         /* default 60000 */
};

void health_params_of(const Drover__HealthCheck *hc, struct health_params *out);

enum health_state { HEALTH_UNKNOWN, HEALTH_UP, HEALTH_DOWN };

struct health_damper {
	enum health_state state;
	unsigned ok_run, bad_run;
	int64_t since_ms; /* when the current state began */
};

/* Pure. */
void health_damper_init(struct health_damper *d, int64_t now_ms);
/* Feed one result. True when the state flipped; *prev_ms then holds how long
 * the previous state lasted. */
bool health_damper_feed(struct health_damper *d, bool ok, unsigned healthy_threshold,
                        unsigned unhealthy_threshold, int64_t now_ms, int64_t *prev_ms);
const char *health_state_name(enum health_state s);

/*
 * The probe schedule of one monitor. Until the instance is healthy for the
 * first time, a failed probe is followed by the next one after
 * HEALTH_FAST_FIRST_MS, doubled after each failure up to the interval,
 * instead of a whole interval: the first success comes about when the
 * instance can first answer, not up to an interval later. After a success
 * the next probe comes at the interval, as always, so healthy_threshold
 * keeps its exact meaning (N successes in a row, one interval apart; a
 * threshold of 1 makes an instance healthy at its first success). A failed
 * fast probe breaks a run of successes but counts toward
 * unhealthy_threshold only when an interval has passed since the last
 * counted failure, so an instance turns unhealthy no sooner than with probes
 * at the interval. Once healthy, probes come at the interval and the
 * damping is the plain one. Pure.
 */
#define HEALTH_FAST_FIRST_MS 10

struct health_sched {
	struct health_damper d;
	bool was_up;          /* healthy once: the fast phase is over */
	uint32_t step_ms;     /* the next fast delay */
	int64_t bad_count_at; /* when the last failure was counted; -1 none */
	int64_t next_at;      /* when the next probe is due */
};

void health_sched_init(struct health_sched *s, const struct health_params *par, int64_t now_ms);
/* Feed one probe's result at now_ms; sets next_at. Same return as
 * health_damper_feed. */
bool health_sched_feed(struct health_sched *s, const struct health_params *par, bool ok,
                       int64_t now_ms, int64_t *prev_ms);

#endif
