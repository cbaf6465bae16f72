/*
 * sha256.h: streaming SHA-256 for content verification (image blobs and
 * manifests). OpenSSL's libcrypto, because it uses the CPU's SHA extensions:
 * several times faster than portable C, which matters when a pull must keep
 * up with the network.
 */
#ifndef DRV_SHA256_H
#define DRV_SHA256_H

#include <stddef.h>

#define DRV_DIGEST_STR 72 /* "sha256:" + 64 hex + NUL, rounded */

struct drv_sha256;

int drv_sha256_new(struct drv_sha256 **out);
void drv_sha256_free(struct drv_sha256 *h);
/* Start over (reuse the object). */
int drv_sha256_reset(struct drv_sha256 *h);
int drv_sha256_update(struct drv_sha256 *h, const void *data, size_t len);
/* Write "sha256:<hex>" into out (DRV_DIGEST_STR bytes). */
int drv_sha256_final(struct drv_sha256 *h, char out[DRV_DIGEST_STR]);
/* One-shot digest of a buffer. */
int drv_sha256_buf(const void *data, size_t len, char out[DRV_DIGEST_STR]);
/* True for "sha256:" followed by exactly 64 lowercase hex digits. */
int drv_digest_valid(const char *digest);

#endif
