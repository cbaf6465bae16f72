/*
 * test_puller.c: the puller's blob verification (agent/puller.c), pulling
 * in process from an oci-layout directory the test writes: a blob enters
 * the cache only with the bytes its digest names, and a bad one leaves
 * neither a cached blob nor a partial one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "atomicfile.h"
#include "err.h"
#include "fsutil.h"
#include "puller.h"
#include "sha256.h"

#define LAYER_LEN ((5u << 20) + 12345)

static char dir[] = "/tmp/test_puller.XXXXXX";
static char layout[256], cache[256], ref[512];
static char mdigest[DRV_DIGEST_STR], ldigest[DRV_DIGEST_STR], cdigest[DRV_DIGEST_STR];
static const char config[] = "{\"architecture\":\"amd64\",\"os\":\"linux\"}";
static unsigned char *layer;

static void put_blob(const void *buf, size_t len, char digest[DRV_DIGEST_STR])
{
	char p[512];

	assert_int_equal(drv_sha256_buf(buf, len, digest), DRV_OK);
	snprintf(p, sizeof(p), "%s/blobs/sha256/%s", layout, digest + 7);
	assert_int_equal(drv_write_atomic(p, buf, len, 0644), DRV_OK);
}

static int setup(void **state)
{
	char manifest[1024], p[300];

	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(layout, sizeof(layout), "%s/layout", dir);
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	snprintf(p, sizeof(p), "%s/blobs/sha256", layout);
	assert_int_equal(drv_mkdirs(p, 0755), DRV_OK);
	layer = malloc(LAYER_LEN);
	assert_non_null(layer);
	for (size_t i = 0; i < LAYER_LEN; i++)
		layer[i] = (unsigned char)(i * 2246822519u >> 11);
	put_blob(config, strlen(config), cdigest);
	put_blob(layer, LAYER_LEN, ldigest);
	snprintf(
	        manifest, sizeof(manifest),
	        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
	        "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
	        "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%u}]}",
	        cdigest, strlen(config), ldigest, LAYER_LEN);
	put_blob(manifest, strlen(manifest), mdigest);
	snprintf(ref, sizeof(ref), "oci-layout:%s@%s", layout, mdigest);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fs_remove_path(dir);
	free(layer);
	return 0;
}

/* Pull into an empty cache; DRV_OK or the error, with err. */
static int pull(char *err, size_t size)
{
	struct puller_config cfg = {.cache_dir = cache, .releases_dir = cache};
	struct puller_stats st = {0};
	struct puller *p;
	int rc;

	assert_int_equal(puller_new(&cfg, &p), DRV_OK);
	rc = puller_fetch(p, ref, mdigest, 0, &st, err, size);
	puller_free(p);
	return rc;
}

static off_t size_of(const char *where, const char *digest)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s/%s", cache, where, digest + 7);
	return stat(p, &st) == 0 ? st.st_size : -1;
}

static void layer_file(const void *buf, size_t len)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/blobs/sha256/%s", layout, ldigest + 7);
	assert_int_equal(drv_write_atomic(p, buf, len, 0644), DRV_OK);
}

static void good_blobs_are_cached(void **state)
{
	char err[512] = "", p[512], *buf;
	size_t len;

	(void)state;
	fs_remove_path(cache);
	assert_int_equal(pull(err, sizeof(err)), DRV_OK);
	snprintf(p, sizeof(p), "%s/blobs/sha256/%s", cache, ldigest + 7);
	assert_int_equal(drv_read_file(p, LAYER_LEN, &buf, &len), DRV_OK);
	assert_int_equal(len, LAYER_LEN);
	assert_memory_equal(buf, layer, LAYER_LEN);
	free(buf);
	assert_int_equal(size_of("partial", ldigest), -1); /* renamed, not copied */
}

/* Same size, one byte changed: refused, and nothing of it stays. */
static void bad_bytes_are_refused(void **state)
{
	char err[512] = "";

	(void)state;
	fs_remove_path(cache);
	layer[LAYER_LEN - 1] ^= 1;
	layer_file(layer, LAYER_LEN);
	layer[LAYER_LEN - 1] ^= 1;
	assert_int_equal(pull(err, sizeof(err)), DRV_EDECODE);
	assert_non_null(strstr(err, "failed verification"));
	assert_non_null(strstr(err, ldigest));
	assert_int_equal(size_of("blobs/sha256", ldigest), -1);
	assert_true(size_of("partial", ldigest) <= 0);
	layer_file(layer, LAYER_LEN);
}

/* A blob small enough to be hashed on the receiving thread (the config), one
 * byte changed: refused the same way. */
static void bad_small_blob_is_refused(void **state)
{
	char err[512] = "", p[512], bad[sizeof(config)];

	(void)state;
	fs_remove_path(cache);
	memcpy(bad, config, sizeof(config));
	bad[1] ^= 1;
	snprintf(p, sizeof(p), "%s/blobs/sha256/%s", layout, cdigest + 7);
	assert_int_equal(drv_write_atomic(p, bad, strlen(bad), 0644), DRV_OK);
	assert_int_equal(pull(err, sizeof(err)), DRV_EDECODE);
	assert_non_null(strstr(err, "failed verification"));
	assert_non_null(strstr(err, cdigest));
	assert_int_equal(size_of("blobs/sha256", cdigest), -1);
	assert_int_equal(drv_write_atomic(p, config, strlen(config), 0644), DRV_OK);
}

/* More bytes than the descriptor says: stopped at the size, not cached. */
static void too_many_bytes_are_refused(void **state)
{
	unsigned char *big = malloc(LAYER_LEN + 10);
	char err[512] = "";

	(void)state;
	assert_non_null(big);
	memcpy(big, layer, LAYER_LEN);
	memset(big + LAYER_LEN, 'x', 10);
	fs_remove_path(cache);
	layer_file(big, LAYER_LEN + 10);
	free(big);
	assert_int_equal(pull(err, sizeof(err)), DRV_EDECODE);
	assert_non_null(strstr(err, "larger than"));
	assert_non_null(strstr(err, ldigest));
	assert_int_equal(size_of("blobs/sha256", ldigest), -1);
	layer_file(layer, LAYER_LEN);
}

/* Fewer bytes than the descriptor says (the first of them right): refused,
 * naming the blob, and not cached. */
static void short_body_is_refused(void **state)
{
	char err[512] = "";

	(void)state;
	fs_remove_path(cache);
	layer_file(layer, LAYER_LEN - 1000);
	assert_int_equal(pull(err, sizeof(err)), DRV_EIO);
	assert_non_null(strstr(err, "truncated"));
	assert_non_null(strstr(err, ldigest));
	assert_int_equal(size_of("blobs/sha256", ldigest), -1);
	layer_file(layer, LAYER_LEN);
}

/* The partial file cannot take the layer (a file size limit of 1 MiB: write
 * fails with EFBIG on the ring's worker): the blob fails saying so, naming
 * it, and neither a cached blob nor a partial one stays. */
static void failed_write_is_refused(void **state)
{
	struct rlimit old, lim;
	char err[512] = "";
	int rc;

	(void)state;
	fs_remove_path(cache);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 1u << 20;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	rc = pull(err, sizeof(err));
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(rc, DRV_ESYS);
	assert_non_null(strstr(err, "cannot write"));
	assert_non_null(strstr(err, ldigest));
	assert_int_equal(size_of("blobs/sha256", ldigest), -1);
	assert_true(size_of("partial", ldigest) <= 0);
}

/* A partial file with wrong bytes from an earlier try: started over. */
static void stale_partial_is_replaced(void **state)
{
	char err[512] = "", p[512];

	(void)state;
	fs_remove_path(cache);
	snprintf(p, sizeof(p), "%s/partial", cache);
	assert_int_equal(drv_mkdirs(p, 0750), DRV_OK);
	snprintf(p, sizeof(p), "%s/partial/%s", cache, ldigest + 7);
	assert_int_equal(drv_write_atomic(p, "garbage", 7, 0640), DRV_OK);
	assert_int_equal(pull(err, sizeof(err)), DRV_OK);
	assert_int_equal(size_of("blobs/sha256", ldigest), LAYER_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(good_blobs_are_cached),
	        cmocka_unit_test(bad_bytes_are_refused),
	        cmocka_unit_test(bad_small_blob_is_refused),
	        cmocka_unit_test(too_many_bytes_are_refused),
	        cmocka_unit_test(short_body_is_refused),
	        cmocka_unit_test(failed_write_is_refused),
	        cmocka_unit_test(stale_partial_is_replaced),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
