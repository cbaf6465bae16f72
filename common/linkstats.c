/* linkstats.c: atomic link counters and their JSON / Prometheus forms. */
#include "linkstats.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "err.h"

static _Atomic uint64_t counters[DRV_STAT_COUNT];
static _Atomic uint64_t rejects[DRV_REJECT_REASONS];

static const struct {
	const char *name, *help;
} stat_info[DRV_STAT_COUNT] = {
        [DRV_STAT_RX_MESSAGES] = {"rx_messages", "Envelopes received on the link."},
        [DRV_STAT_RX_BYTES] = {"rx_bytes", "Bytes of envelopes received on the link."},
        [DRV_STAT_TX_MESSAGES] = {"tx_messages", "Envelopes sent on the link."},
        [DRV_STAT_HELLOS] = {"hellos", "Hello messages processed."},
        [DRV_STAT_POLLS] = {"polls", "Polls verified."},
        [DRV_STAT_REPORTS] = {"reports", "New reports verified."},
        [DRV_STAT_INSTR_QUEUED] = {"instructions_queued", "Instructions queued."},
        [DRV_STAT_INSTR_SENT] = {"instructions_sent", "Instructions delivered for the first time."},
        [DRV_STAT_INSTR_RESENT] = {"instructions_resent", "Instructions delivered again."},
        [DRV_STAT_INSTR_ACKED] = {"instructions_acked", "Instructions acknowledged by agents."},
        [DRV_STAT_INSTR_EXPIRED] = {"instructions_expired", "Instructions expired unacknowledged."},
        [DRV_STAT_INSTR_APPLIED] = {"instructions_applied", "Instructions applied by the agent."},
        [DRV_STAT_INSTR_DUPLICATE] = {"instructions_duplicate",
                                      "Repeated step ids acknowledged without running them."},
        [DRV_STAT_AGENTS_ENROLLED] = {"agents_enrolled", "Agents accepted."},
        [DRV_STAT_SESSIONS] = {"sessions", "Hello/Welcome exchanges completed."},
};

static const char *const reject_names[DRV_REJECT_REASONS] = {
        "unspecified",  "bad_signature", "unknown_key", "replay",      "expired",      "future",
        "wrong_target", "malformed",     "too_large",   "version",     "not_accepted", "no_digest",
        "id_taken",     "internal",      "not_leader",  "stale_epoch",
};

void drv_linkstats_inc(enum drv_stat s)
{
	drv_linkstats_add(s, 1);
}

void drv_linkstats_add(enum drv_stat s, uint64_t n)
{
	if ((unsigned)s < DRV_STAT_COUNT)
		atomic_fetch_add_explicit(&counters[s], n, memory_order_relaxed);
}

void drv_linkstats_reject(Drover__RejectReason reason)
{
	unsigned r = (unsigned)reason < DRV_REJECT_REASONS ? (unsigned)reason : 0;

	atomic_fetch_add_explicit(&rejects[r], 1, memory_order_relaxed);
}

void drv_linkstats_get(struct drv_linkstats *out)
{
	for (size_t i = 0; i < DRV_STAT_COUNT; i++)
		out->v[i] = atomic_load_explicit(&counters[i], memory_order_relaxed);
	for (size_t i = 0; i < DRV_REJECT_REASONS; i++)
		out->rejected[i] = atomic_load_explicit(&rejects[i], memory_order_relaxed);
}

uint64_t drv_linkstats_rejected_total(void)
{
	uint64_t n = 0;

	for (size_t i = 0; i < DRV_REJECT_REASONS; i++)
		n += atomic_load_explicit(&rejects[i], memory_order_relaxed);
	return n;
}

void drv_linkstats_reset(void)
{
	for (size_t i = 0; i < DRV_STAT_COUNT; i++)
		atomic_store(&counters[i], 0);
	for (size_t i = 0; i < DRV_REJECT_REASONS; i++)
		atomic_store(&rejects[i], 0);
}

const char *drv_stat_name(enum drv_stat s)
{
	return (unsigned)s < DRV_STAT_COUNT ? stat_info[s].name : "unknown";
}

const char *drv_stat_help(enum drv_stat s)
{
	return (unsigned)s < DRV_STAT_COUNT ? stat_info[s].help : "";
}

const char *drv_reject_name(Drover__RejectReason reason)
{
	return (unsigned)reason < DRV_REJECT_REASONS ? reject_names[reason] : "unknown";
}

/* Append to a fixed buffer; the texts here are small and bounded. */
#define TEXT_MAX 16384

struct text {
	char *buf;
	size_t n;
	bool full;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (t->full)
		return;
	va_start(ap, fmt);
	w = vsnprintf(t->buf + t->n, TEXT_MAX - t->n, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= TEXT_MAX - t->n)
		t->full = true;
	else
		t->n += (size_t)w;
}

static int text_done(struct text *t, char **out)
{
	if (t->full) {
		free(t->buf);
		return DRV_ETOOBIG;
	}
	*out = t->buf;
	return DRV_OK;
}

int drv_linkstats_json(char **out)
{
	struct drv_linkstats s;
	struct text t = {.buf = malloc(TEXT_MAX)};

	if (t.buf == NULL)
		return DRV_ENOMEM;
	drv_linkstats_get(&s);
	put(&t, "{");
	for (size_t i = 0; i < DRV_STAT_COUNT; i++)
		put(&t, "\"%s\": %" PRIu64 ", ", stat_info[i].name, s.v[i]);
	put(&t, "\"rejected\": {");
	for (size_t i = 0; i < DRV_REJECT_REASONS; i++)
		put(&t, "%s\"%s\": %" PRIu64, i ? ", " : "", reject_names[i], s.rejected[i]);
	put(&t, "}, \"rejected_total\": %" PRIu64 "}\n", drv_linkstats_rejected_total());
	return text_done(&t, out);
}

int drv_linkstats_prometheus(const char *prefix, char **out)
{
	struct drv_linkstats s;
	struct text t = {.buf = malloc(TEXT_MAX)};

	if (t.buf == NULL)
		return DRV_ENOMEM;
	drv_linkstats_get(&s);
	for (size_t i = 0; i < DRV_STAT_COUNT; i++) {
		put(&t, "# HELP %s_link_%s_total %s\n", prefix, stat_info[i].name,
		    stat_info[i].help);
		put(&t, "# TYPE %s_link_%s_total counter\n", prefix, stat_info[i].name);
		put(&t, "%s_link_%s_total %" PRIu64 "\n", prefix, stat_info[i].name, s.v[i]);
	}
	put(&t, "# HELP %s_link_rejected_total Link messages rejected, by reason.\n", prefix);
	put(&t, "# TYPE %s_link_rejected_total counter\n", prefix);
	for (size_t i = 0; i < DRV_REJECT_REASONS; i++)
		put(&t, "%s_link_rejected_total{reason=\"%s\"} %" PRIu64 "\n", prefix,
		    reject_names[i], s.rejected[i]);
	return text_done(&t, out);
}

int drv_linkstats_write_json(const char *path)
{
	char *json;
	int rc = drv_linkstats_json(&json);

	if (rc != DRV_OK)
		return rc;
	rc = drv_write_atomic(path, json, strlen(json), 0644);
	free(json);
	return rc;
}

void drv_linkstats_write_changed(struct drv_linkstats_file *f, const char *path)
{
	struct drv_linkstats now;

	drv_linkstats_get(&now);
	if (f->written && memcmp(&now, &f->last, sizeof(now)) == 0)
		return;
	if (drv_linkstats_write_json(path) == DRV_OK) {
		f->last = now;
		f->written = true;
	}
}
