/*
 * token.h: bearer secrets (API tokens, enrollment tokens) and their hashes.
 *
 * A token is "<prefix>_" followed by 43 characters of URL-safe base64 (32
 * random bytes). Only its hash is ever stored: BLAKE2b-256 over a domain
 * string and the token. Tokens carry 256 bits of entropy, so a fast hash is
 * enough; comparisons are constant-time. Shared by the API (api_tokens) and
 * enrollment (enroll_tokens).
 */
#ifndef DRV_TOKEN_H
#define DRV_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DRV_TOKEN_HASH_LEN 32
#define DRV_TOKEN_MAX      128 /* longest token accepted, with its prefix */

/* A new random token "<prefix>_<base64url>" in out (cap >= 64 + strlen(prefix)). */
int drv_token_new(const char *prefix, char *out, size_t cap);
/* Hash a token; DRV_EINVAL if it is empty or longer than DRV_TOKEN_MAX. */
int drv_token_hash(const char *token, uint8_t out[DRV_TOKEN_HASH_LEN]);
/* Constant-time comparison of two hashes. */
bool drv_token_hash_equal(const uint8_t a[DRV_TOKEN_HASH_LEN], const uint8_t b[DRV_TOKEN_HASH_LEN]);
/* Read a token from a file (first line, trimmed); the file must be private. */
int drv_token_read_file(const char *path, char *out, size_t cap);
/* Write a token to a new private file (0600) with a trailing newline. */
int drv_token_write_file(const char *path, const char *token);

#endif
