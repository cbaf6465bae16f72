/* secret.c: random bearer secrets and their stored hashes. */
#include "secret.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "err.h"

#define SECRET_DOMAIN "drover/secret/v1\n"

int drv_secret_new(const char *prefix, char *out, size_t cap)
{
	uint8_t raw[32];
	char b64[64];
	int n;

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	n = snprintf(out, cap, "%s_%s", prefix, b64);
	sodium_memzero(b64, sizeof(b64));
	if (n < 0 || (size_t)n >= cap || (size_t)n > DRV_SECRET_MAX) {
		sodium_memzero(out, cap);
		return DRV_EINVAL;
	}
	return DRV_OK;
}

int drv_secret_hash(const char *token, uint8_t out[DRV_SECRET_HASH_LEN])
{
	crypto_generichash_state st;
	size_t len = token ? strnlen(token, DRV_SECRET_MAX + 1) : 0;

	if (len == 0 || len > DRV_SECRET_MAX)
		return DRV_EINVAL;
	crypto_generichash_init(&st, NULL, 0, DRV_SECRET_HASH_LEN);
	crypto_generichash_update(&st, (const unsigned char *)SECRET_DOMAIN, strlen(SECRET_DOMAIN));
	crypto_generichash_update(&st, (const unsigned char *)token, len);
	crypto_generichash_final(&st, out, DRV_SECRET_HASH_LEN);
	return DRV_OK;
}

bool drv_secret_hash_equal(const uint8_t a[DRV_SECRET_HASH_LEN],
                           const uint8_t b[DRV_SECRET_HASH_LEN])
{
	return sodium_memcmp(a, b, DRV_SECRET_HASH_LEN) == 0;
}

int drv_secret_read_file(const char *path, char *out, size_t cap)
{
	char *text;
	size_t len;
	int rc;

	rc = drv_check_private(path);
	if (rc != DRV_OK)
		return rc;
	rc = drv_read_file(path, DRV_SECRET_MAX + 64, &text, &len);
	if (rc != DRV_OK)
		return rc;
	len = strcspn(text, "\r\n");
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	if (len == 0 || len > DRV_SECRET_MAX || len >= cap) {
		rc = DRV_EINVAL;
	} else {
		memcpy(out, text, len);
		out[len] = '\0';
	}
	sodium_memzero(text, strlen(text));
	free(text);
	return rc;
}

int drv_secret_write_file(const char *path, const char *token)
{
	char line[DRV_SECRET_MAX + 2];
	int n = snprintf(line, sizeof(line), "%s\n", token);
	int rc;

	if (n < 0 || (size_t)n >= sizeof(line))
		return DRV_EINVAL;
	rc = drv_write_atomic(path, line, (size_t)n, 0600);
	sodium_memzero(line, sizeof(line));
	return rc;
}
