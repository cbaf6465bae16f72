/*
 * fsim.h: the fleet simulator's virtual agents (see fleetsim.c).
 *
 * A virtual agent is what drover-agent is on the wire, without a runtime:
 * its own Ed25519 key pair and agent id, its own NNG REQ socket and dialer
 * (one TCP connection), a poll context that says Hello (with an enrollment
 * token) and then keeps one long Poll outstanding, and a report context that
 * sends signed Reports in order until each is acknowledged. An instruction is
 * checked (coordinator signature, target, sequence), acknowledged with an
 * ACCEPTED report, "worked on" for the configured simulated time (pull,
 * restart, health) on an NNG sleep, and finished with a SUCCEEDED report.
 *
 * Everything runs on NNG's aio callbacks: no thread per agent. Each agent has
 * a mutex for the state its three callbacks (poll, report, work) share.
 *
 * Timestamps are microseconds: mono for durations, wall for comparing with
 * what the coordinator wrote into an instruction (issued_at_ms).
 */
#ifndef DRV_FSIM_H
#define DRV_FSIM_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "keys.h"

struct fsim_timing {
	int64_t pull_ms;    /* PRESTAGE, and START of an image not staged yet */
	int64_t restart_ms; /* START, STOP, ACTIVATE_PREVIOUS: stop old + start new */
	int64_t health_ms;  /* START, ACTIVATE_PREVIOUS, HEALTH_CHECK: until healthy */
	int64_t hook_ms;    /* RUN_HOOK */
};

/* What every agent shares (read-only once agents start, but for counters). */
struct fsim_fleet {
	const char *url;
	struct drv_keyring ring; /* coordinator keys */
	const char *enroll_token;
	struct fsim_timing t;
	int64_t request_timeout_ms, poll_timeout_ms;
	int64_t reconnect_min_ms, reconnect_max_ms;
	const char *label_key; /* NULL: no label */
	char **label_values;   /* cycled over the agents */
	size_t n_label_values;
	atomic_bool stopping;
	/* milestones: counted once per agent (per round for the round ones) */
	atomic_uint n_accepted;    /* Welcome accepted */
	atomic_uint n_polling;     /* first Poll after the Welcome sent */
	atomic_uint n_round_rx;    /* first instruction of the round received */
	atomic_uint n_round_ack;   /* its ACCEPTED report acknowledged */
	atomic_uint n_reports_out; /* reports queued, not yet acknowledged */
	atomic_uint n_work_out;    /* instructions being worked on */
	/* totals */
	atomic_ullong instructions, reports, rejects, errors, hellos, polls, idles;
	pthread_mutex_t mu; /* milestone waits */
	pthread_cond_t cv;
};

struct fsim_report;
struct fsim_work;

struct fsim_agent {
	struct fsim_fleet *f;
	unsigned idx;
	char id[64];
	struct drv_keypair kp;
	nng_socket sock;
	nng_ctx pctx, rctx;
	nng_aio *paio, *raio, *waio;
	/* The naps between retries sleep on aios of their own: libnng 1.5.2
	 * keeps a sleep's "expiry is success" on the aio, and a request that
	 * times out on it later completes with 0 and no message. */
	nng_aio *pnap, *rnap;
	bool opened;
	int pstate, rstate; /* the two contexts' state machines (fsim_agent.c) */
	unsigned p_fail, r_fail;
	pthread_mutex_t mu; /* below */
	uint64_t applied_seq, report_seq;
	struct fsim_report *rq_head, *rq_tail;
	struct fsim_work *wq_head, *wq_tail;
	bool working;
	bool accepted_once;
	uint8_t nonce[64]; /* the last Welcome's, for the next Hello (session freshness) */
	size_t nonce_len;
	/* per round (reset by fsim_round_reset) */
	int64_t round_rx_wall_us, round_ack_wall_us;
	int64_t round_issued_ms;
	uint64_t round_seq;
	unsigned instr_count;
};

/* Set up (keys, id) without connecting. */
int fsim_agent_init(struct fsim_agent *a, struct fsim_fleet *f, unsigned idx, const char *prefix);
/* Open the socket, dial, say Hello. */
int fsim_agent_start(struct fsim_agent *a);
/* Stop every aio (waits for callbacks); then fsim_agent_free. */
void fsim_agent_stop(struct fsim_agent *a);
void fsim_agent_free(struct fsim_agent *a);
/* Forget the round's measurements. */
void fsim_round_reset(struct fsim_agent *a);

/* Wake whoever waits on the fleet's milestones. */
void fsim_fleet_notify(struct fsim_fleet *f);

int64_t fsim_wall_us(void);
int64_t fsim_mono_us(void);

#endif
