/* test_envelope.c: sealing and opening signed envelopes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "err.h"

struct fx {
	struct drv_keypair kp, other;
	struct drv_keyring ring;
	uint8_t *buf;
	size_t len;
};

static Drover__Poll make_poll(void)
{
	Drover__Poll p = DROVER__POLL__INIT;

	p.agent_id = "web-1";
	p.applied_seq = 41;
	p.sent_at_ms = 1764137400000;
	p.nonce = 7;
	return p;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	Drover__Poll p = make_poll();

	assert_int_equal(drv_crypto_init(), DRV_OK);
	assert_int_equal(drv_keypair_generate(&f->kp), DRV_OK);
	assert_int_equal(drv_keypair_generate(&f->other), DRV_OK);
	drv_keyring_init(&f->ring);
	struct drv_pubkey pub;
	assert_int_equal(drv_pubkey_from_raw(f->kp.pk, DRV_PK_LEN, &pub), DRV_OK);
	assert_int_equal(drv_keyring_add(&f->ring, &pub), DRV_OK);
	assert_int_equal(drv_env_seal(&f->kp, "web-1", DROVER__BODY_TYPE__BODY_POLL, &p.base, false,
	                              &f->buf, &f->len),
	                 DRV_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	free(f->buf);
	free(f);
	return 0;
}

static void round_trip(void **state)
{
	struct fx *f = *state;
	ProtobufCMessage *msg = NULL;

	assert_int_equal(drv_env_open(f->buf, f->len, &f->ring, DROVER__BODY_TYPE__BODY_POLL, &msg),
	                 DRV_OK);
	Drover__Poll *p = (Drover__Poll *)msg;
	assert_string_equal(p->agent_id, "web-1");
	assert_int_equal(p->applied_seq, 41);
	assert_int_equal(p->nonce, 7);
	drv_msg_free(msg);
}

/* Re-pack an envelope after flipping one bit of its body or signature. */
static int open_with_flip(struct fx *f, int in_sig, size_t bit)
{
	Drover__Envelope *env = drover__envelope__unpack(NULL, f->len, f->buf);
	ProtobufCMessage *msg = NULL;
	uint8_t *buf;
	size_t len;
	int rc;

	assert_non_null(env);
	ProtobufCBinaryData *field = in_sig ? &env->signature : &env->body;
	field->data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	len = drover__envelope__get_packed_size(env);
	buf = malloc(len);
	drover__envelope__pack(env, buf);
	drover__envelope__free_unpacked(env, NULL);
	rc = drv_env_open(buf, len, &f->ring, DROVER__BODY_TYPE__BODY_POLL, &msg);
	drv_msg_free(msg);
	free(buf);
	return rc;
}

static void flipped_bit_in_body_or_signature_rejected(void **state)
{
	struct fx *f = *state;
	Drover__Envelope *env = drover__envelope__unpack(NULL, f->len, f->buf);
	size_t body_bits = env->body.len * 8, sig_bits = env->signature.len * 8;

	drover__envelope__free_unpacked(env, NULL);
	for (size_t bit = 0; bit < body_bits; bit++)
		assert_int_equal(open_with_flip(f, 0, bit), DRV_EBADSIG);
	for (size_t bit = 0; bit < sig_bits; bit++)
		assert_int_equal(open_with_flip(f, 1, bit), DRV_EBADSIG);
}

/* Any single-bit change of the serialized envelope is refused, or leaves the
 * signed content exactly as it was (an unsigned hint field). */
static void flipped_bit_anywhere_never_changes_content(void **state)
{
	struct fx *f = *state;
	uint8_t *copy = malloc(f->len);

	for (size_t bit = 0; bit < f->len * 8; bit++) {
		ProtobufCMessage *msg = NULL;
		memcpy(copy, f->buf, f->len);
		copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int rc = drv_env_open(copy, f->len, &f->ring, DROVER__BODY_TYPE__BODY_POLL, &msg);
		if (rc == DRV_OK) {
			Drover__Poll *p = (Drover__Poll *)msg;
			assert_string_equal(p->agent_id, "web-1");
			assert_int_equal(p->applied_seq, 41);
			assert_int_equal(p->nonce, 7);
		}
		drv_msg_free(msg);
	}
	free(copy);
}

static void unknown_key_rejected(void **state)
{
	struct fx *f = *state;
	Drover__Poll p = make_poll();
	ProtobufCMessage *msg = NULL;
	uint8_t *buf;
	size_t len;

	assert_int_equal(drv_env_seal(&f->other, "web-1", DROVER__BODY_TYPE__BODY_POLL, &p.base,
	                              false, &buf, &len),
	                 DRV_OK);
	assert_int_equal(drv_env_open(buf, len, &f->ring, DROVER__BODY_TYPE__BODY_POLL, &msg),
	                 DRV_EUNKNOWNKEY);
	assert_null(msg);
	free(buf);
}

static void key_id_pointing_at_trusted_key_but_other_signer_rejected(void **state)
{
	struct fx *f = *state;
	Drover__Poll p = make_poll();
	ProtobufCMessage *msg = NULL;
	struct drv_keypair forger = f->other;
	uint8_t *buf;
	size_t len;

	/* The forger claims the trusted key's id. */
	memcpy(forger.id, f->kp.id, sizeof(forger.id));
	assert_int_equal(drv_env_seal(&forger, "web-1", DROVER__BODY_TYPE__BODY_POLL, &p.base,
	                              false, &buf, &len),
	                 DRV_OK);
	assert_int_equal(drv_env_open(buf, len, &f->ring, DROVER__BODY_TYPE__BODY_POLL, &msg),
	                 DRV_EBADSIG);
	free(buf);
}

/* Epoch 0 seals exactly what a sender without epochs sealed: envelopes
 * of a single node and of the previous release verify on both sides. */
static void epoch_zero_is_the_old_envelope(void **state)
{
	struct fx *f = *state;
	Drover__Poll p = make_poll();
	uint8_t *buf;
	size_t len;

	assert_int_equal(drv_env_seal_epoch(&f->kp, "web-1", DROVER__BODY_TYPE__BODY_POLL, &p.base,
	                                    0, false, &buf, &len),
	                 DRV_OK);
	assert_int_equal(len, f->len);
	assert_memory_equal(buf, f->buf, len);
	free(buf);
}

/* Parse, change the epoch, re-pack (the signature stays), verify. */
static int verify_with_epoch(const uint8_t *buf, size_t len, uint64_t epoch,
                             const struct drv_keyring *ring)
{
	Drover__Envelope *env = NULL;
	uint8_t *out;
	size_t out_len;
	int rc;

	assert_int_equal(drv_env_parse(buf, len, DRV_ENV_MAX, &env), DRV_OK);
	env->epoch = epoch;
	out_len = drover__envelope__get_packed_size(env);
	out = malloc(out_len);
	drover__envelope__pack(env, out);
	drv_env_free(env);
	assert_int_equal(drv_env_parse(out, out_len, DRV_ENV_MAX, &env), DRV_OK);
	rc = drv_env_verify_ring(env, ring);
	drv_env_free(env);
	free(out);
	return rc;
}

/* The epoch is signed: an old leader cannot pass its message off as one of
 * a newer epoch, nor anyone strip or lower the epoch of a new one. */
static void epoch_is_signed(void **state)
{
	struct fx *f = *state;
	Drover__Poll p = make_poll();
	Drover__Envelope *env = NULL;
	uint8_t *buf;
	size_t len;

	assert_int_equal(drv_env_seal_epoch(&f->kp, "web-1", DROVER__BODY_TYPE__BODY_POLL, &p.base,
	                                    7, false, &buf, &len),
	                 DRV_OK);
	assert_int_equal(drv_env_parse(buf, len, DRV_ENV_MAX, &env), DRV_OK);
	assert_int_equal(env->epoch, 7);
	assert_int_equal(drv_env_verify_ring(env, &f->ring), DRV_OK);
	drv_env_free(env);
	assert_int_equal(verify_with_epoch(buf, len, 7, &f->ring), DRV_OK);
	assert_int_equal(verify_with_epoch(buf, len, 8, &f->ring), DRV_EBADSIG);
	assert_int_equal(verify_with_epoch(buf, len, 6, &f->ring), DRV_EBADSIG);
	assert_int_equal(verify_with_epoch(buf, len, 0, &f->ring), DRV_EBADSIG);
	/* and an epoch-less envelope cannot be given one */
	assert_int_equal(verify_with_epoch(f->buf, f->len, 1, &f->ring), DRV_EBADSIG);
	free(buf);
}

/* A queued instruction re-signed by the next leader: same body, new epoch. */
static void reseal_keeps_body_changes_epoch(void **state)
{
	struct fx *f = *state;
	Drover__Envelope *a = NULL, *b = NULL;
	uint8_t *buf;
	size_t len;

	assert_int_equal(drv_env_reseal(&f->kp, f->buf, f->len, 9, &buf, &len), DRV_OK);
	assert_int_equal(drv_env_parse(f->buf, f->len, DRV_ENV_MAX, &a), DRV_OK);
	assert_int_equal(drv_env_parse(buf, len, DRV_ENV_MAX, &b), DRV_OK);
	assert_int_equal(b->epoch, 9);
	assert_int_equal(b->type, a->type);
	assert_string_equal(b->sender, a->sender);
	assert_int_equal(b->body.len, a->body.len);
	assert_memory_equal(b->body.data, a->body.data, a->body.len);
	assert_int_equal(drv_env_verify_ring(b, &f->ring), DRV_OK);
	drv_env_free(a);
	drv_env_free(b);
	free(buf);
	/* garbage is refused, not signed */
	assert_int_equal(drv_env_reseal(&f->kp, (const uint8_t *)"\xff\xff", 2, 9, &buf, &len),
	                 DRV_EDECODE);
}

static void oversized_rejected_before_reading(void **state)
{
	(void)state;
	uint8_t tiny[4] = {0};
	Drover__Envelope *env = NULL;

	/* len lies: if the parser touched the bytes, ASan would see the overflow. */
	assert_int_equal(drv_env_parse(tiny, DRV_ENV_MAX + 1, DRV_ENV_MAX, &env), DRV_ETOOBIG);
	assert_int_equal(drv_env_parse(tiny, DRV_ENV_HELLO_MAX + 1, DRV_ENV_HELLO_MAX, &env),
	                 DRV_ETOOBIG);
	assert_null(env);
}

static void garbage_and_empty_rejected(void **state)
{
	(void)state;
	uint8_t garbage[64];
	Drover__Envelope *env = NULL;

	memset(garbage, 0xff, sizeof(garbage));
	assert_int_equal(drv_env_parse(garbage, sizeof(garbage), DRV_ENV_MAX, &env), DRV_EDECODE);
	assert_int_equal(drv_env_parse(garbage, 0, DRV_ENV_MAX, &env), DRV_EDECODE);
	assert_null(env);
}

static void other_version_rejected(void **state)
{
	struct fx *f = *state;
	Drover__Envelope *env = drover__envelope__unpack(NULL, f->len, f->buf), *out = NULL;
	uint8_t buf[1024];

	env->version = 2;
	size_t len = drover__envelope__pack(env, buf);
	drover__envelope__free_unpacked(env, NULL);
	assert_int_equal(drv_env_parse(buf, len, DRV_ENV_MAX, &out), DRV_EVERSION);
	assert_null(out);
}

static void wrong_body_type_rejected(void **state)
{
	struct fx *f = *state;
	ProtobufCMessage *msg = NULL;

	assert_int_equal(
	        drv_env_open(f->buf, f->len, &f->ring, DROVER__BODY_TYPE__BODY_INSTRUCTION, &msg),
	        DRV_EDECODE);
	assert_null(msg);
}

static void type_changed_after_signing_rejected(void **state)
{
	struct fx *f = *state;
	Drover__Envelope *env = drover__envelope__unpack(NULL, f->len, f->buf);
	ProtobufCMessage *msg = NULL;
	uint8_t buf[1024];

	env->type = DROVER__BODY_TYPE__BODY_ACK;
	size_t len = drover__envelope__pack(env, buf);
	drover__envelope__free_unpacked(env, NULL);
	assert_int_equal(drv_env_open(buf, len, &f->ring, DROVER__BODY_TYPE__BODY_ACK, &msg),
	                 DRV_EBADSIG);
}

static void self_signed_hello(void **state)
{
	struct fx *f = *state;
	Drover__Hello h = DROVER__HELLO__INIT;
	Drover__Envelope *env = NULL;
	struct drv_pubkey key;
	uint8_t *buf;
	size_t len;

	h.agent_id = "db-1";
	h.public_key.data = f->other.pk;
	h.public_key.len = DRV_PK_LEN;
	assert_int_equal(drv_env_seal(&f->other, "db-1", DROVER__BODY_TYPE__BODY_HELLO, &h.base,
	                              true, &buf, &len),
	                 DRV_OK);
	assert_int_equal(drv_env_parse(buf, len, DRV_ENV_HELLO_MAX, &env), DRV_OK);
	assert_int_equal(drv_env_verify_self(env, &key), DRV_OK);
	assert_memory_equal(key.pk, f->other.pk, DRV_PK_LEN);
	/* The same envelope is not trusted by the ring. */
	assert_int_equal(drv_env_verify_ring(env, &f->ring), DRV_EUNKNOWNKEY);
	/* A carried key that did not sign is refused. */
	memcpy(env->public_key.data, f->kp.pk, DRV_PK_LEN);
	assert_int_not_equal(drv_env_verify_self(env, &key), DRV_OK);
	drv_env_free(env);
	free(buf);
}

static void seal_refuses_mismatched_type(void **state)
{
	struct fx *f = *state;
	Drover__Poll p = make_poll();
	uint8_t *buf = NULL;
	size_t len;

	assert_int_equal(drv_env_seal(&f->kp, "x", DROVER__BODY_TYPE__BODY_HELLO, &p.base, false,
	                              &buf, &len),
	                 DRV_EINVAL);
	assert_null(buf);
}

static void reject_reasons_map(void **state)
{
	(void)state;
	assert_int_equal(drv_reject_reason(DRV_EREPLAY), DROVER__REJECT_REASON__REJECT_REPLAY);
	assert_int_equal(drv_reject_reason(DRV_EBADSIG),
	                 DROVER__REJECT_REASON__REJECT_BAD_SIGNATURE);
	assert_int_equal(drv_reject_reason(DRV_ETARGET),
	                 DROVER__REJECT_REASON__REJECT_WRONG_TARGET);
	assert_int_equal(drv_reject_reason(DRV_EEXPIRED), DROVER__REJECT_REASON__REJECT_EXPIRED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
	        cmocka_unit_test_setup_teardown(flipped_bit_in_body_or_signature_rejected, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(flipped_bit_anywhere_never_changes_content, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(unknown_key_rejected, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                key_id_pointing_at_trusted_key_but_other_signer_rejected, setup, teardown),
	        cmocka_unit_test_setup_teardown(epoch_zero_is_the_old_envelope, setup, teardown),
	        cmocka_unit_test_setup_teardown(epoch_is_signed, setup, teardown),
	        cmocka_unit_test_setup_teardown(reseal_keeps_body_changes_epoch, setup, teardown),
	        cmocka_unit_test(oversized_rejected_before_reading),
	        cmocka_unit_test(garbage_and_empty_rejected),
	        cmocka_unit_test_setup_teardown(other_version_rejected, setup, teardown),
	        cmocka_unit_test_setup_teardown(wrong_body_type_rejected, setup, teardown),
	        cmocka_unit_test_setup_teardown(type_changed_after_signing_rejected, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(self_signed_hello, setup, teardown),
	        cmocka_unit_test_setup_teardown(seal_refuses_mismatched_type, setup, teardown),
	        cmocka_unit_test(reject_reasons_map),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
