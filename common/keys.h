/*
 * keys.h: Ed25519 key pairs and the key ring of trusted public keys.
 *
 * Files are one line of text: "drover-ed25519-secret-v1 <base64>" (mode 0600,
 * refused if group or others can read it) or "drover-ed25519-public-v1
 * <base64>". A key id is the first 8 bytes of BLAKE2b(public key), in hex.
 */
#ifndef DRV_KEYS_H
#define DRV_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define DRV_PK_LEN      32
#define DRV_SK_LEN      64
#define DRV_SIG_LEN     64
#define DRV_KEYID_LEN   16 /* hex characters, without the NUL */
#define DRV_KEYRING_MAX 16

struct drv_keypair {
	uint8_t pk[DRV_PK_LEN];
	uint8_t sk[DRV_SK_LEN];
	char id[DRV_KEYID_LEN + 1];
};

struct drv_pubkey {
	uint8_t pk[DRV_PK_LEN];
	char id[DRV_KEYID_LEN + 1];
};

/* Call once at start-up, before any other function of this module. */
int drv_crypto_init(void);

int drv_keypair_generate(struct drv_keypair *out);
/* Write secret (0600) and, if pub_path is not NULL, public key files. */
int drv_keypair_save(const struct drv_keypair *kp, const char *secret_path, const char *pub_path);
/* DRV_EPERM if the file is readable by group or others. */
int drv_keypair_load(const char *secret_path, struct drv_keypair *out);
/* Load, or generate and save if secret_path does not exist yet. */
int drv_keypair_load_or_create(const char *secret_path, const char *pub_path,
                               struct drv_keypair *out);
/* Wipe the secret key from memory. */
void drv_keypair_wipe(struct drv_keypair *kp);

void drv_key_id(const uint8_t pk[DRV_PK_LEN], char out[DRV_KEYID_LEN + 1]);
int drv_pubkey_load(const char *path, struct drv_pubkey *out);
int drv_pubkey_from_raw(const uint8_t *pk, size_t len, struct drv_pubkey *out);
/* Base64 text of a public key (for configs, APIs). out needs 64 bytes. */
void drv_pubkey_b64(const uint8_t pk[DRV_PK_LEN], char out[64]);
int drv_pubkey_parse_b64(const char *b64, struct drv_pubkey *out);

/* Detached signature over prefix || msg. */
int drv_sign(const struct drv_keypair *kp, const void *prefix, size_t prefix_len, const void *msg,
             size_t len, uint8_t sig[DRV_SIG_LEN]);
int drv_verify(const uint8_t pk[DRV_PK_LEN], const void *prefix, size_t prefix_len, const void *msg,
               size_t len, const uint8_t sig[DRV_SIG_LEN]);

/* A small set of trusted public keys (e.g. coordinator keys during rotation). */
struct drv_keyring {
	struct drv_pubkey keys[DRV_KEYRING_MAX];
	size_t n;
};

void drv_keyring_init(struct drv_keyring *ring);
int drv_keyring_add(struct drv_keyring *ring, const struct drv_pubkey *key);
int drv_keyring_add_file(struct drv_keyring *ring, const char *path);
/* NULL if no key with that id is trusted. */
const struct drv_pubkey *drv_keyring_find(const struct drv_keyring *ring, const char *key_id);

#endif
