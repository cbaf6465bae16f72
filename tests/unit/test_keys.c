/* test_keys.c: key pairs, key files, key ids and the key ring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "err.h"
#include "keys.h"

static char dir[] = "/tmp/drv-keys-XXXXXX";

static int setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	return drv_crypto_init() == DRV_OK ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path(char *out, const char *name)
{
	snprintf(out, 256, "%s/%s", dir, name);
}

static void save_and_load_round_trip(void **state)
{
	(void)state;
	struct drv_keypair kp, back;
	struct drv_pubkey pub;
	char sk[256], pk[256];
	struct stat st;

	path(sk, "a.key");
	path(pk, "a.pub");
	assert_int_equal(drv_keypair_generate(&kp), DRV_OK);
	assert_int_equal(drv_keypair_save(&kp, sk, pk), DRV_OK);
	assert_int_equal(stat(sk, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(drv_keypair_load(sk, &back), DRV_OK);
	assert_memory_equal(kp.pk, back.pk, DRV_PK_LEN);
	assert_memory_equal(kp.sk, back.sk, DRV_SK_LEN);
	assert_string_equal(kp.id, back.id);
	assert_int_equal(drv_pubkey_load(pk, &pub), DRV_OK);
	assert_memory_equal(pub.pk, kp.pk, DRV_PK_LEN);
	assert_string_equal(pub.id, kp.id);
}

static void readable_key_refused(void **state)
{
	(void)state;
	struct drv_keypair kp, back;
	char sk[256];

	path(sk, "open.key");
	assert_int_equal(drv_keypair_generate(&kp), DRV_OK);
	assert_int_equal(drv_keypair_save(&kp, sk, NULL), DRV_OK);
	assert_int_equal(chmod(sk, 0644), 0);
	memset(&back, 0xAA, sizeof(back));
	assert_int_equal(drv_keypair_load(sk, &back), DRV_EPERM);
	assert_int_equal(back.pk[0], 0xAA); /* output untouched on failure */
	assert_int_equal(chmod(sk, 0640), 0);
	assert_int_equal(drv_keypair_load(sk, &back), DRV_EPERM);
	assert_int_equal(chmod(sk, 0600), 0);
	assert_int_equal(drv_keypair_load(sk, &back), DRV_OK);
}

static void corrupt_and_missing_key_files(void **state)
{
	(void)state;
	struct drv_keypair kp;
	char sk[256];

	path(sk, "bad.key");
	assert_int_equal(drv_write_atomic(sk, "drover-ed25519-secret-v1 AAAA\n", 30, 0600), DRV_OK);
	assert_int_equal(drv_keypair_load(sk, &kp), DRV_EDECODE);
	assert_int_equal(drv_write_atomic(sk, "garbage\n", 8, 0600), DRV_OK);
	assert_int_equal(drv_keypair_load(sk, &kp), DRV_EDECODE);
	path(sk, "none.key");
	assert_int_equal(drv_keypair_load(sk, &kp), DRV_ENOENT);
}

static void load_or_create_is_stable(void **state)
{
	(void)state;
	struct drv_keypair a, b;
	char sk[256], pk[256];

	path(sk, "agent.key");
	path(pk, "agent.pub");
	assert_int_equal(drv_keypair_load_or_create(sk, pk, &a), DRV_OK);
	assert_int_equal(drv_keypair_load_or_create(sk, pk, &b), DRV_OK);
	assert_memory_equal(a.pk, b.pk, DRV_PK_LEN);
	drv_keypair_wipe(&b);
	assert_int_equal(b.sk[0] | b.sk[31] | b.sk[63], 0);
}

static void key_id_is_short_hex_hash(void **state)
{
	(void)state;
	struct drv_keypair a, b;

	assert_int_equal(drv_keypair_generate(&a), DRV_OK);
	assert_int_equal(drv_keypair_generate(&b), DRV_OK);
	assert_int_equal(strlen(a.id), DRV_KEYID_LEN);
	for (int i = 0; i < DRV_KEYID_LEN; i++)
		assert_true(isxdigit((unsigned char)a.id[i]));
	assert_string_not_equal(a.id, b.id);
	char again[DRV_KEYID_LEN + 1];
	drv_key_id(a.pk, again);
	assert_string_equal(again, a.id);
}

static void sign_verify_and_b64(void **state)
{
	(void)state;
	struct drv_keypair kp;
	struct drv_pubkey pub;
	uint8_t sig[DRV_SIG_LEN];
	char b64[64];

	assert_int_equal(drv_keypair_generate(&kp), DRV_OK);
	assert_int_equal(drv_sign(&kp, "p/", 2, "body", 4, sig), DRV_OK);
	assert_int_equal(drv_verify(kp.pk, "p/", 2, "body", 4, sig), DRV_OK);
	assert_int_equal(drv_verify(kp.pk, "q/", 2, "body", 4, sig), DRV_EBADSIG);
	assert_int_equal(drv_verify(kp.pk, "p/", 2, "bodY", 4, sig), DRV_EBADSIG);
	drv_pubkey_b64(kp.pk, b64);
	assert_int_equal(drv_pubkey_parse_b64(b64, &pub), DRV_OK);
	assert_memory_equal(pub.pk, kp.pk, DRV_PK_LEN);
	assert_int_equal(drv_pubkey_parse_b64("not base64!", &pub), DRV_EDECODE);
	/* a large message takes the heap path */
	size_t big = 100000;
	char *msg = calloc(1, big);
	assert_int_equal(drv_sign(&kp, "p/", 2, msg, big, sig), DRV_OK);
	assert_int_equal(drv_verify(kp.pk, "p/", 2, msg, big, sig), DRV_OK);
	free(msg);
}

static void keyring_holds_two_keys_for_rotation(void **state)
{
	(void)state;
	struct drv_keypair old_key, new_key, stranger;
	struct drv_keyring ring;
	char p1[256], p2[256];

	path(p1, "old.pub");
	path(p2, "new.pub");
	assert_int_equal(drv_keypair_generate(&old_key), DRV_OK);
	assert_int_equal(drv_keypair_generate(&new_key), DRV_OK);
	assert_int_equal(drv_keypair_generate(&stranger), DRV_OK);
	path(p1, "old.key");
	assert_int_equal(drv_keypair_save(&old_key, p1, p2), DRV_OK);
	drv_keyring_init(&ring);
	assert_int_equal(drv_keyring_add_file(&ring, p2), DRV_OK);
	struct drv_pubkey np;
	assert_int_equal(drv_pubkey_from_raw(new_key.pk, DRV_PK_LEN, &np), DRV_OK);
	assert_int_equal(drv_keyring_add(&ring, &np), DRV_OK);
	assert_int_equal(drv_keyring_add(&ring, &np), DRV_OK); /* duplicate is a no-op */
	assert_int_equal(ring.n, 2);
	assert_non_null(drv_keyring_find(&ring, old_key.id));
	assert_non_null(drv_keyring_find(&ring, new_key.id));
	assert_null(drv_keyring_find(&ring, stranger.id));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(save_and_load_round_trip),
	        cmocka_unit_test(readable_key_refused),
	        cmocka_unit_test(corrupt_and_missing_key_files),
	        cmocka_unit_test(load_or_create_is_stable),
	        cmocka_unit_test(key_id_is_short_hex_hash),
	        cmocka_unit_test(sign_verify_and_b64),
	        cmocka_unit_test(keyring_holds_two_keys_for_rotation),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
