/* session.c: the session nonce (see session.h). */
#include "session.h"

#include <sodium.h>
#include <string.h>

#include "err.h"

#define MAC_LEN 16

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void mac(const uint8_t key[SESSION_KEY_LEN], const uint8_t head[16],
                const struct session_claim *who, uint8_t out[MAC_LEN])
{
	crypto_generichash_state st;
	uint8_t pipe[4] = {(uint8_t)(who->pipe >> 24), (uint8_t)(who->pipe >> 16),
	                   (uint8_t)(who->pipe >> 8), (uint8_t)who->pipe};
	const char *id = who->agent_id ? who->agent_id : "";

	crypto_generichash_init(&st, key, SESSION_KEY_LEN, MAC_LEN);
	crypto_generichash_update(&st, (const uint8_t *)"drover-session-v1", 17);
	crypto_generichash_update(&st, head, 16);
	crypto_generichash_update(&st, pipe, sizeof(pipe));
	crypto_generichash_update(&st, who->pk, DRV_PK_LEN);
	crypto_generichash_update(&st, (const uint8_t *)id, strlen(id) + 1);
	crypto_generichash_final(&st, out, MAC_LEN);
}

void session_nonce_make(const uint8_t key[SESSION_KEY_LEN], uint64_t ctr, int64_t mono_ms,
                        const struct session_claim *who, uint8_t out[SESSION_NONCE_LEN])
{
	put64(out, ctr);
	put64(out + 8, (uint64_t)mono_ms);
	mac(key, out, who, out + 16);
	memset(out + 16 + MAC_LEN, 0, SESSION_NONCE_LEN - 16 - MAC_LEN);
}

int session_nonce_check(const uint8_t key[SESSION_KEY_LEN], const uint8_t *nonce, size_t len,
                        const struct session_claim *who, int64_t now_mono, uint64_t *ctr_out)
{
	uint8_t want[MAC_LEN];
	int64_t made;

	if (nonce == NULL || len != SESSION_NONCE_LEN || who->pk == NULL)
		return DRV_EINVAL;
	mac(key, nonce, who, want);
	if (sodium_memcmp(want, nonce + 16, MAC_LEN) != 0)
		return DRV_EINVAL;
	made = (int64_t)get64(nonce + 8);
	if (now_mono < made || now_mono - made > SESSION_NONCE_TTL_MS)
		return DRV_EEXPIRED;
	*ctr_out = get64(nonce);
	return DRV_OK;
}
