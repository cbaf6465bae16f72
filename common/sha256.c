/* sha256.c: SHA-256 through OpenSSL EVP or libsodium (see sha256.h). */
#include "sha256.h"

#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

struct drv_sha256 {
	EVP_MD_CTX *ctx; /* NULL: the light engine */
	crypto_hash_sha256_state light;
};

int drv_sha256_new(struct drv_sha256 **out)
{
	struct drv_sha256 *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return DRV_ENOMEM;
	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		drv_sha256_free(h);
		return DRV_ENOMEM;
	}
	*out = h;
	return DRV_OK;
}

int drv_sha256_new_light(struct drv_sha256 **out)
{
	struct drv_sha256 *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return DRV_ENOMEM;
	crypto_hash_sha256_init(&h->light);
	*out = h;
	return DRV_OK;
}

void drv_sha256_free(struct drv_sha256 *h)
{
	if (h == NULL)
		return;
	if (h->ctx != NULL) /* a light one touches no libcrypto function */
		EVP_MD_CTX_free(h->ctx);
	free(h);
}

int drv_sha256_reset(struct drv_sha256 *h)
{
	if (h->ctx == NULL)
		return crypto_hash_sha256_init(&h->light) == 0 ? DRV_OK : DRV_EIO;
	return EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1 ? DRV_OK : DRV_EIO;
}

int drv_sha256_update(struct drv_sha256 *h, const void *data, size_t len)
{
	if (h->ctx == NULL)
		return crypto_hash_sha256_update(&h->light, data, len) == 0 ? DRV_OK : DRV_EIO;
	return EVP_DigestUpdate(h->ctx, data, len) == 1 ? DRV_OK : DRV_EIO;
}

int drv_sha256_final(struct drv_sha256 *h, char out[DRV_DIGEST_STR])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (h->ctx == NULL) {
		if (crypto_hash_sha256_final(&h->light, md) != 0)
			return DRV_EIO;
	} else if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != 32) {
		return DRV_EIO;
	}
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
	return DRV_OK;
}

int drv_sha256_buf(const void *data, size_t len, char out[DRV_DIGEST_STR])
{
	struct drv_sha256 *h;
	int rc = drv_sha256_new_light(&h);

	if (rc != DRV_OK)
		return rc;
	rc = drv_sha256_update(h, data, len);
	if (rc == DRV_OK)
		rc = drv_sha256_final(h, out);
	drv_sha256_free(h);
	return rc;
}

int drv_digest_valid(const char *d)
{
	if (d == NULL || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
		return 0;
	return strspn(d + 7, "0123456789abcdef") == 64;
}
