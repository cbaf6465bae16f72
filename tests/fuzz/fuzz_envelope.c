/*
 * fuzz_envelope.c: envelope open + body decode on arbitrary bytes.
 *
 * Runs the whole receive path: size cap, outer decode, version, signature
 * against a ring holding the seed key, then body decode. Bodies are also
 * decoded without a valid signature so the protobuf decoders of every body
 * type get fuzzed, not only what passes verification. The HA epoch
 * (envelope field 8) takes part in the signature: a verified envelope is
 * also re-sealed under another epoch and must verify under that one only.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "envelope.h"
#include "err.h"
#include "fuzz_keys.h"

static struct drv_keyring ring;
static struct drv_keypair seed_kp;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct drv_keypair kp;
	struct drv_pubkey pub;

	(void)argc;
	(void)argv;
	if (drv_crypto_init() != DRV_OK)
		abort();
	fuzz_keypair(&kp);
	seed_kp = kp;
	drv_keyring_init(&ring);
	drv_pubkey_from_raw(kp.pk, DRV_PK_LEN, &pub);
	drv_keyring_add(&ring, &pub);
	return 0;
}

/* Re-sealing under another epoch verifies under that epoch and no other. */
static void reseal_check(const uint8_t *data, size_t size, uint64_t epoch)
{
	Drover__Envelope *re = NULL;
	uint8_t *out = NULL;
	size_t len;

	if (drv_env_reseal(&seed_kp, data, size, epoch + 1, &out, &len) != DRV_OK)
		return;
	if (drv_env_parse(out, len, DRV_ENV_MAX, &re) != DRV_OK) {
		if (len <= DRV_ENV_MAX) /* only a larger key id may push it over the cap */
			abort();
		free(out);
		return;
	}
	if (re->epoch != epoch + 1 || drv_env_verify_ring(re, &ring) != DRV_OK)
		abort();
	re->epoch = epoch;
	if (epoch + 1 != 0 && drv_env_verify_ring(re, &ring) == DRV_OK)
		abort(); /* the epoch is not bound by the signature */
	drv_env_free(re);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Drover__Envelope *env = NULL;
	ProtobufCMessage *msg = NULL;
	struct drv_pubkey self;

	if (drv_env_parse(data, size, DRV_ENV_MAX, &env) != DRV_OK)
		return 0;
	if (drv_env_verify_ring(env, &ring) == DRV_OK &&
	    drv_env_decode(env, env->type, &msg) == DRV_OK)
		drv_msg_free(msg);
	reseal_check(data, size, env->epoch);
	(void)drv_env_verify_self(env, &self);
	msg = NULL;
	if (drv_env_decode(env, env->type, &msg) == DRV_OK) {
		/* re-encode what was decoded: packs must not crash either */
		size_t n = protobuf_c_message_get_packed_size(msg);
		uint8_t *buf = malloc(n ? n : 1);
		if (buf != NULL)
			protobuf_c_message_pack(msg, buf);
		free(buf);
		drv_msg_free(msg);
	}
	drv_env_free(env);
	return 0;
}
