/*
 * linkstats.h: process-wide counters of the control link.
 *
 * Both daemons count what crosses the link: messages, instructions, acks,
 * duplicates and every rejection by reason. Counters are C11 atomics, so any
 * thread may bump them without a lock. droverd serves them on /metrics
 * (drv_linkstats_prometheus) and both daemons write them as JSON to a status
 * file (drv_linkstats_write_json) that tests and operators can read.
 */
#ifndef DRV_LINKSTATS_H
#define DRV_LINKSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover.pb-c.h"

enum drv_stat {
	DRV_STAT_RX_MESSAGES,     /* envelopes received (any outcome) */
	DRV_STAT_RX_BYTES,        /* bytes of envelopes received */
	DRV_STAT_TX_MESSAGES,     /* envelopes sent */
	DRV_STAT_HELLOS,          /* Hello accepted for processing */
	DRV_STAT_POLLS,           /* Poll verified */
	DRV_STAT_REPORTS,         /* Report verified and new */
	DRV_STAT_INSTR_QUEUED,    /* coordinator: instructions queued */
	DRV_STAT_INSTR_SENT,      /* coordinator: first deliveries */
	DRV_STAT_INSTR_RESENT,    /* coordinator: deliveries after the first */
	DRV_STAT_INSTR_ACKED,     /* coordinator: instructions acknowledged */
	DRV_STAT_INSTR_EXPIRED,   /* coordinator: expired before an ack */
	DRV_STAT_INSTR_APPLIED,   /* agent: instructions accepted and handed to the executor */
	DRV_STAT_INSTR_DUPLICATE, /* agent: known step ids acknowledged without running them */
	DRV_STAT_AGENTS_ENROLLED, /* coordinator: agents accepted (token or operator) */
	DRV_STAT_SESSIONS,        /* agent: successful Hello/Welcome exchanges */
	DRV_STAT_COUNT
};

#define DRV_REJECT_REASONS 16 /* Drover__RejectReason values 0..15 */

struct drv_linkstats {
	uint64_t v[DRV_STAT_COUNT];
	uint64_t rejected[DRV_REJECT_REASONS];
};

void drv_linkstats_inc(enum drv_stat s);
void drv_linkstats_add(enum drv_stat s, uint64_t n);
/* Count one rejected message. */
void drv_linkstats_reject(Drover__RejectReason reason);
/* A consistent-enough copy of every counter. */
void drv_linkstats_get(struct drv_linkstats *out);
uint64_t drv_linkstats_rejected_total(void);
/* For tests: set everything to zero. */
void drv_linkstats_reset(void);

/* Stable snake_case names: "rx_messages", "bad_signature". */
const char *drv_stat_name(enum drv_stat s);
const char *drv_stat_help(enum drv_stat s);
const char *drv_reject_name(Drover__RejectReason reason);

/* {"rx_messages": N, ..., "rejected": {"bad_signature": N, ...},
 *  "rejected_total": N}; *out is malloc'd. */
int drv_linkstats_json(char **out);
/* Prometheus text (drover_link_*); *out is malloc'd. */
int drv_linkstats_prometheus(const char *prefix, char **out);
/* Write the JSON atomically to path (mode 0644). */
int drv_linkstats_write_json(const char *path);

/* The last counters a daemon wrote to its status file. */
struct drv_linkstats_file {
	struct drv_linkstats last;
	bool written;
};
/* drv_linkstats_write_json when the counters changed since the last write. */
void drv_linkstats_write_changed(struct drv_linkstats_file *f, const char *path);

#endif
