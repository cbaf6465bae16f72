/* keys.c: Ed25519 keys with libsodium, key files and the key ring. */
#include "keys.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "err.h"

#define SECRET_TAG  "drover-ed25519-secret-v1 "
#define PUBLIC_TAG  "drover-ed25519-public-v1 "
#define KEYFILE_MAX 512

int drv_crypto_init(void)
{
	return sodium_init() < 0 ? DRV_ESYS : DRV_OK;
}

void drv_key_id(const uint8_t pk[DRV_PK_LEN], char out[DRV_KEYID_LEN + 1])
{
	uint8_t h[DRV_KEYID_LEN / 2];

	crypto_generichash(h, sizeof(h), pk, DRV_PK_LEN, NULL, 0);
	sodium_bin2hex(out, DRV_KEYID_LEN + 1, h, sizeof(h));
}

int drv_keypair_generate(struct drv_keypair *out)
{
	struct drv_keypair kp;

	if (crypto_sign_keypair(kp.pk, kp.sk) != 0)
		return DRV_ESYS;
	drv_key_id(kp.pk, kp.id);
	*out = kp;
	sodium_memzero(&kp, sizeof(kp));
	return DRV_OK;
}

static int save_line(const char *path, const char *tag, const uint8_t *bin, size_t len, mode_t mode)
{
	char line[KEYFILE_MAX];
	size_t n = strlen(tag);
	int rc;

	memcpy(line, tag, n);
	sodium_bin2base64(line + n, sizeof(line) - n - 1, bin, len, sodium_base64_VARIANT_ORIGINAL);
	n = strlen(line);
	line[n++] = '\n';
	rc = drv_write_atomic(path, line, n, mode);
	sodium_memzero(line, sizeof(line));
	return rc;
}

int drv_keypair_save(const struct drv_keypair *kp, const char *secret_path, const char *pub_path)
{
	int rc = save_line(secret_path, SECRET_TAG, kp->sk, DRV_SK_LEN, 0600);

	if (rc == DRV_OK && pub_path != NULL)
		rc = save_line(pub_path, PUBLIC_TAG, kp->pk, DRV_PK_LEN, 0644);
	return rc;
}

/* Read "TAG base64\n" from a file and decode exactly want bytes. */
static int load_line(const char *path, const char *tag, uint8_t *bin, size_t want)
{
	char *text = NULL;
	size_t len, tag_len = strlen(tag), bin_len = 0;
	int rc;

	rc = drv_read_file(path, KEYFILE_MAX, &text, &len);
	if (rc != DRV_OK)
		return rc;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
		text[--len] = '\0';
	if (len < tag_len || memcmp(text, tag, tag_len) != 0 ||
	    sodium_base642bin(bin, want, text + tag_len, len - tag_len, NULL, &bin_len, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    bin_len != want)
		rc = DRV_EDECODE;
	sodium_memzero(text, len);
	free(text);
	return rc;
}

int drv_keypair_load(const char *secret_path, struct drv_keypair *out)
{
	struct drv_keypair kp;
	int rc;

	rc = drv_check_private(secret_path);
	if (rc != DRV_OK)
		return rc;
	rc = load_line(secret_path, SECRET_TAG, kp.sk, DRV_SK_LEN);
	if (rc != DRV_OK)
		return rc;
	if (crypto_sign_ed25519_sk_to_pk(kp.pk, kp.sk) != 0) {
		sodium_memzero(&kp, sizeof(kp));
		return DRV_EDECODE;
	}
	drv_key_id(kp.pk, kp.id);
	*out = kp;
	sodium_memzero(&kp, sizeof(kp));
	return DRV_OK;
}

int drv_keypair_load_or_create(const char *secret_path, const char *pub_path,
                               struct drv_keypair *out)
{
	struct drv_keypair kp;
	int rc = drv_keypair_load(secret_path, out);

	if (rc != DRV_ENOENT)
		return rc;
	rc = drv_keypair_generate(&kp);
	if (rc == DRV_OK)
		rc = drv_keypair_save(&kp, secret_path, pub_path);
	if (rc == DRV_OK)
		*out = kp;
	sodium_memzero(&kp, sizeof(kp));
	return rc;
}

void drv_keypair_wipe(struct drv_keypair *kp)
{
	if (kp != NULL)
		sodium_memzero(kp, sizeof(*kp));
}

int drv_pubkey_from_raw(const uint8_t *pk, size_t len, struct drv_pubkey *out)
{
	if (pk == NULL || len != DRV_PK_LEN)
		return DRV_EINVAL;
	memcpy(out->pk, pk, DRV_PK_LEN);
	drv_key_id(out->pk, out->id);
	return DRV_OK;
}

int drv_pubkey_load(const char *path, struct drv_pubkey *out)
{
	uint8_t pk[DRV_PK_LEN];
	int rc = load_line(path, PUBLIC_TAG, pk, sizeof(pk));

	return rc == DRV_OK ? drv_pubkey_from_raw(pk, sizeof(pk), out) : rc;
}

void drv_pubkey_b64(const uint8_t pk[DRV_PK_LEN], char out[64])
{
	sodium_bin2base64(out, 64, pk, DRV_PK_LEN, sodium_base64_VARIANT_ORIGINAL);
}

int drv_pubkey_parse_b64(const char *b64, struct drv_pubkey *out)
{
	uint8_t pk[DRV_PK_LEN];
	size_t n = 0;

	if (sodium_base642bin(pk, sizeof(pk), b64, strlen(b64), NULL, &n, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    n != DRV_PK_LEN)
		return DRV_EDECODE;
	return drv_pubkey_from_raw(pk, n, out);
}

/* Ed25519 needs the whole message at once: join prefix and body. */
static unsigned char *join(const void *prefix, size_t prefix_len, const void *msg, size_t len,
                           unsigned char *stackbuf, size_t stack_cap)
{
	unsigned char *buf = stackbuf;

	if (prefix_len + len > stack_cap)
		buf = malloc(prefix_len + len);
	if (buf == NULL)
		return NULL;
	memcpy(buf, prefix, prefix_len);
	if (len > 0)
		memcpy(buf + prefix_len, msg, len);
	return buf;
}

int drv_sign(const struct drv_keypair *kp, const void *prefix, size_t prefix_len, const void *msg,
             size_t len, uint8_t sig[DRV_SIG_LEN])
{
	unsigned char stackbuf[1024];
	unsigned char *buf = join(prefix, prefix_len, msg, len, stackbuf, sizeof(stackbuf));

	if (buf == NULL)
		return DRV_ENOMEM;
	crypto_sign_detached(sig, NULL, buf, prefix_len + len, kp->sk);
	if (buf != stackbuf)
		free(buf);
	return DRV_OK;
}

int drv_verify(const uint8_t pk[DRV_PK_LEN], const void *prefix, size_t prefix_len, const void *msg,
               size_t len, const uint8_t sig[DRV_SIG_LEN])
{
	unsigned char stackbuf[1024];
	unsigned char *buf = join(prefix, prefix_len, msg, len, stackbuf, sizeof(stackbuf));
	int ok;

	if (buf == NULL)
		return DRV_ENOMEM;
	ok = crypto_sign_verify_detached(sig, buf, prefix_len + len, pk) == 0;
	if (buf != stackbuf)
		free(buf);
	return ok ? DRV_OK : DRV_EBADSIG;
}

void drv_keyring_init(struct drv_keyring *ring)
{
	memset(ring, 0, sizeof(*ring));
}

int drv_keyring_add(struct drv_keyring *ring, const struct drv_pubkey *key)
{
	if (drv_keyring_find(ring, key->id) != NULL)
		return DRV_OK;
	if (ring->n >= DRV_KEYRING_MAX)
		return DRV_ETOOBIG;
	ring->keys[ring->n++] = *key;
	return DRV_OK;
}

int drv_keyring_add_file(struct drv_keyring *ring, const char *path)
{
	struct drv_pubkey key;
	int rc = drv_pubkey_load(path, &key);

	return rc == DRV_OK ? drv_keyring_add(ring, &key) : rc;
}

const struct drv_pubkey *drv_keyring_find(const struct drv_keyring *ring, const char *key_id)
{
	for (size_t i = 0; i < ring->n; i++) {
		if (strcmp(ring->keys[i].id, key_id) == 0)
			return &ring->keys[i];
	}
	return NULL;
}
