/*
 * dispatch.h: turning "run this on agent X" into a signed, sequenced,
 * expiring instruction in the queue. This is the API the sequencer (and the
 * debug tools) use; see core.h for delivery and for the report hook.
 *
 * An instruction is built here, gets the agent's next sequence number and is
 * signed inside one store transaction, so the stored envelope is exactly
 * what is sent (and resent) until the agent acknowledges it. Queueing is
 * idempotent by step id: the same step id for the same agent returns the
 * sequence number it already has.
 */
#ifndef DRV_DISPATCH_H
#define DRV_DISPATCH_H

#include <stdint.h>

#include "drover.pb-c.h"
#include "keys.h"
#include "store.h"

#define DISPATCH_STEP_ID_MAX 200
#define DISPATCH_TTL_MAX_MS  (7LL * 24 * 3600 * 1000)

/* What to queue. Pointers are borrowed for the duration of the call. */
struct dispatch_instr {
	const char *agent_id;
	const char *deployment_id; /* may be NULL */
	const char *step_id;       /* idempotency key, required */
	Drover__Action action;
	const Drover__ServiceSpec *service; /* PRESTAGE/START/...: image pinned by digest */
	const Drover__Hook *hook;           /* RUN_HOOK */
	const Drover__LogRequest *log;      /* READ_LOG */
	int64_t ttl_ms;                     /* 0: the coordinator's default */
	uint32_t step_deadline_ms;
};

/* Validate (step id, action, digest), build, sign and queue. Returns DRV_OK or
 * DRV_EEXIST (the step id was queued before; *seq_out is its sequence),
 * DRV_ENOENT (unknown agent), DRV_ESTATE (agent not accepted), DRV_ENODIGEST,
 * DRV_EINVAL. */
int dispatch_enqueue(struct store *s, const struct drv_keypair *kp, const struct dispatch_instr *in,
                     int64_t now_ms, int64_t default_ttl_ms, uint64_t *seq_out);

/* An instruction signed ahead, outside any lock, for the sequence number it
 * will probably get; dispatch_enqueue_sealed signs again if it gets
 * another (two instructions raced for one agent). */
struct dispatch_sealed {
	uint64_t seq; /* 0: nothing signed ahead */
	uint8_t *env;
	size_t len;
	int64_t now_ms, ttl_ms;
};

/* Validate and sign in for seq; no store access. On failure out stays
 * empty (dispatch_enqueue_sealed then reports the error). */
int dispatch_presign(const struct drv_keypair *kp, const struct dispatch_instr *in, int64_t now_ms,
                     int64_t default_ttl_ms, uint64_t seq, struct dispatch_sealed *out);
/* dispatch_enqueue, using pre's signature when the sequence number matches
 * (pre may be NULL or empty: sign here with now_ms). Takes pre's envelope. */
int dispatch_enqueue_sealed(struct store *s, const struct drv_keypair *kp,
                            const struct dispatch_instr *in, struct dispatch_sealed *pre,
                            int64_t now_ms, int64_t default_ttl_ms, uint64_t *seq_out);
/* dispatch_enqueue_sealed for each of n (pre: n of them, or NULL), through
 * store_instr_enqueue_many (one check and one insert for the n on
 * PostgreSQL): rcs[i] and seqs[i] as its result and *seq_out. DRV_ENOMEM
 * (nothing queued) or DRV_OK. */
int dispatch_enqueue_many(struct store *s, const struct drv_keypair *kp,
                          const struct dispatch_instr *in, struct dispatch_sealed *pre, size_t n,
                          int64_t now_ms, int64_t default_ttl_ms, uint64_t *seqs, int *rcs);
void dispatch_sealed_clear(struct dispatch_sealed *p);

/* True if the digest reads "sha256:" and 64 lowercase hex digits. */
bool dispatch_digest_valid(const char *digest);

#endif
