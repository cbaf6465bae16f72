/*
 * fuzz_session.c: the session start on the coordinator (issue 13): a Hello
 * body from an untrusted peer through its checks and JSON form
 * (link/hello.c), its nonce through the session check (link/session.c),
 * and a Welcome body as the agent decodes it. Nothing may crash, leak or
 * accept a nonce this key did not make.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drover.pb-c.h"
#include "err.h"
#include "hello.h"
#include "session.h"

static const uint8_t key[SESSION_KEY_LEN] = {7};
static const uint8_t pk[32] = {1, 2, 3};

static void check_hello(const uint8_t *data, size_t size)
{
	Drover__Hello *h = drover__hello__unpack(NULL, size, data);
	struct hello_json j;
	char why[128];
	uint64_t ctr;

	if (h == NULL)
		return;
	if (hello_check(h, why, sizeof(why)) == DRV_OK && hello_to_json(h, &j) == DRV_OK)
		hello_json_free(&j);
	struct session_claim who = {h->agent_id, pk, 5};
	if (session_nonce_check(key, h->nonce.data, h->nonce.len, &who, 1000, &ctr) == DRV_OK) {
		/* only a nonce made with this key can pass: a forged one is a bug */
		uint8_t again[SESSION_NONCE_LEN];
		session_nonce_make(key, ctr, 1000, &who, again);
		if (h->nonce.len != SESSION_NONCE_LEN ||
		    memcmp(again + 16, h->nonce.data + 16, SESSION_NONCE_LEN - 16) != 0)
			abort();
	}
	drover__hello__free_unpacked(h, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Drover__Welcome *w;
	uint8_t made[SESSION_NONCE_LEN];
	uint64_t ctr;
	struct session_claim who = {"web-1", pk, 5};

	check_hello(data, size);
	w = drover__welcome__unpack(NULL, size, data);
	drover__welcome__free_unpacked(w, NULL);
	/* a nonce made for web-1 never passes for the bytes' other claims */
	session_nonce_make(key, size, 500, &who, made);
	if (size > 0 && size <= 64) {
		char id[64 + 1];
		memcpy(id, data, size);
		id[size] = '\0';
		struct session_claim other = {id, pk, 5};
		if (strcmp(id, "web-1") != 0 && strlen(id) == size &&
		    session_nonce_check(key, made, sizeof(made), &other, 600, &ctr) == DRV_OK)
			abort();
	}
	return 0;
}
