/*
 * secret.h: random bearer secrets (enrollment tokens), their stored hashes,
 * and the private files that hold them.
 *
 * A secret is "<prefix>_" followed by 43 characters of URL-safe base64 (32
 * random bytes). Only its hash is ever stored: BLAKE2b-256 over a domain
 * string and the secret. Secrets carry 256 bits of entropy, so a fast hash
 * is enough; comparisons are constant-time. API tokens have their own module
 * (coordinator/api/tokens.h) with the same construction.
 */
#ifndef DRV_SECRET_H
#define DRV_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DRV_SECRET_HASH_LEN 32
#define DRV_SECRET_MAX      128 /* longest token accepted, with its prefix */

/* A new random token "<prefix>_<base64url>" in out (cap >= 64 + strlen(prefix)). */
int drv_secret_new(const char *prefix, char *out, size_t cap);
/* Hash a token; DRV_EINVAL if it is empty or longer than DRV_SECRET_MAX. */
int drv_secret_hash(const char *token, uint8_t out[DRV_SECRET_HASH_LEN]);
/* Constant-time comparison of two hashes. */
bool drv_secret_hash_equal(const uint8_t a[DRV_SECRET_HASH_LEN],
                           const uint8_t b[DRV_SECRET_HASH_LEN]);
/* Read a token from a file (first line, trimmed); the file must be private. */
int drv_secret_read_file(const char *path, char *out, size_t cap);
/* Write a token to a new private file (0600) with a trailing newline. */
int drv_secret_write_file(const char *path, const char *token);

#endif
