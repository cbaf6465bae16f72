/* lazy_crypto.c: libcrypto (OpenSSL), loaded on first use (lazylib.h). The
 * agent hashes blobs and layers with it in the fetch and unpack helpers
 * (sha256.h); the resident agent hashes documents with libsodium and so
 * never loads it, except for an in-process pull of an oci-layout source. */
#include <openssl/evp.h>
#include <stddef.h>

#include "lazylib.h"

#define CRYPTO_SONAME "libcrypto.so.3"
static void *CRYPTO_handle;

LAZYLIB_FN(CRYPTO, EVP_MD_CTX *, EVP_MD_CTX_new, (void), (), NULL)
LAZYLIB_VOID(CRYPTO, EVP_MD_CTX_free, (EVP_MD_CTX * ctx), (ctx))
LAZYLIB_FN(CRYPTO, const EVP_MD *, EVP_sha256, (void), (), NULL)
LAZYLIB_FN(CRYPTO, int, EVP_DigestInit_ex, (EVP_MD_CTX * ctx, const EVP_MD *type, ENGINE *impl),
           (ctx, type, impl), 0)
LAZYLIB_FN(CRYPTO, int, EVP_DigestUpdate, (EVP_MD_CTX * ctx, const void *d, size_t cnt),
           (ctx, d, cnt), 0)
LAZYLIB_FN(CRYPTO, int, EVP_DigestFinal_ex, (EVP_MD_CTX * ctx, unsigned char *md, unsigned int *s),
           (ctx, md, s), 0)
