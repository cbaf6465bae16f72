/*
 * session.h: fresh session starts (no I/O, no lock).
 *
 * Every Welcome carries a nonce the agent must put in its next Hello; a
 * Hello without a valid one is answered with a challenge and changes
 * nothing. A nonce is stateless: a counter, the monotonic time it was made
 * and a keyed BLAKE2b MAC (key random per droverd process) over both, the
 * agent id, its public key and the connection (NNG pipe) it was sent on. So
 * it is good only for that agent and key, on that connection, for
 * SESSION_NONCE_TTL_MS; the core remembers per agent the last counter used,
 * so each nonce starts one session at most.
 */
#ifndef DRV_SESSION_H
#define DRV_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "keys.h"

#define SESSION_NONCE_LEN    32
#define SESSION_KEY_LEN      32
#define SESSION_NONCE_TTL_MS 60000

struct session_claim {
	const char *agent_id;
	const uint8_t *pk; /* DRV_PK_LEN bytes */
	uint32_t pipe;
};

void session_nonce_make(const uint8_t key[SESSION_KEY_LEN], uint64_t ctr, int64_t mono_ms,
                        const struct session_claim *who, uint8_t out[SESSION_NONCE_LEN]);
/* DRV_OK and *ctr_out if nonce (len bytes) was made by key for who and is
 * younger than the TTL at now_mono; DRV_EINVAL (not ours, other agent, key
 * or connection) or DRV_EEXPIRED. */
int session_nonce_check(const uint8_t key[SESSION_KEY_LEN], const uint8_t *nonce, size_t len,
                        const struct session_claim *who, int64_t now_mono, uint64_t *ctr_out);

#endif
