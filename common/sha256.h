/*
 * sha256.h: streaming SHA-256 for content verification (image blobs,
 * manifests, configs, a release's files).
 *
 * Two engines behind one type. drv_sha256_new: OpenSSL's libcrypto, because
 * it uses the CPU's SHA extensions (several times faster than portable C,
 * which matters for blobs and layers, where a pull must keep up with the
 * network). drv_sha256_new_light: libsodium's portable C, for documents of
 * a few KiB (manifests, image configs, plan files). The long-running agent
 * hashes only such documents, and only with the light engine, so it never
 * loads libcrypto: OpenSSL's first digest initialises its default provider
 * (about 2 MiB of code and heap that stay resident), and drover-agent loads
 * libcrypto on first use only (lazylib.h); the fetch and unpack helpers,
 * which hash blobs and layers, load it.
 */
#ifndef DRV_SHA256_H
#define DRV_SHA256_H

#include <stddef.h>

#define DRV_DIGEST_STR 72 /* "sha256:" + 64 hex + NUL, rounded */

struct drv_sha256;

/* Bulk data (libcrypto). */
int drv_sha256_new(struct drv_sha256 **out);
/* Small documents (libsodium, no libcrypto). */
int drv_sha256_new_light(struct drv_sha256 **out);
void drv_sha256_free(struct drv_sha256 *h);
/* Start over (reuse the object). */
int drv_sha256_reset(struct drv_sha256 *h);
int drv_sha256_update(struct drv_sha256 *h, const void *data, size_t len);
/* Write "sha256:<hex>" into out (DRV_DIGEST_STR bytes). */
int drv_sha256_final(struct drv_sha256 *h, char out[DRV_DIGEST_STR]);
/* One-shot digest of a buffer, with the light engine: for documents held in
 * memory (manifests, configs), not for blobs. */
int drv_sha256_buf(const void *data, size_t len, char out[DRV_DIGEST_STR]);
/* True for "sha256:" followed by exactly 64 lowercase hex digits. */
int drv_digest_valid(const char *digest);

#endif
