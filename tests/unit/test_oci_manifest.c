/* test_oci_manifest.c: manifest/index parsing and image references (common/oci*). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "oci.h"
#include "oci_manifest.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static int parse(const char *json, const char *ctype, struct drv_oci_manifest *m, char *err)
{
	return drv_oci_manifest_parse(json, strlen(json), ctype, m, err, 256);
}

static void oci_manifest(void **state)
{
	struct drv_oci_manifest m;
	char err[256];
	const char *j = "{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\","
	                "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
	                "\"digest\":\"" D1 "\",\"size\":10},\"layers\":["
	                "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
	                "\"digest\":\"" D2 "\",\"size\":20},"
	                "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\","
	                "\"digest\":\"" D3 "\",\"size\":30}]}";
	(void)state;
	assert_int_equal(parse(j, NULL, &m, err), DRV_OK);
	assert_int_equal(m.kind, DRV_OCI_MANIFEST);
	assert_string_equal(m.config.digest, D1);
	assert_int_equal(m.n_entries, 2);
	assert_int_equal(m.entries[0].compression, DRV_OCI_GZIP);
	assert_int_equal(m.entries[1].compression, DRV_OCI_ZSTD);
	assert_int_equal(m.entries[1].size, 30);
	drv_oci_manifest_clear(&m);
}

static void kind_from_content_type(void **state)
{
	/* umoci omits mediaType: the registry's Content-Type decides. */
	struct drv_oci_manifest m;
	char err[256];
	const char *j = "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\",\"size\":1},"
	                "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff."
	                "tar.gzip\",\"digest\":\"" D2 "\",\"size\":2}]}";
	(void)state;
	assert_int_equal(parse(j, DRV_MT_DOCKER_MANIFEST, &m, err), DRV_OK);
	assert_int_equal(m.kind, DRV_OCI_MANIFEST);
	assert_string_equal(m.media_type, DRV_MT_DOCKER_MANIFEST);
	drv_oci_manifest_clear(&m);
	assert_int_equal(parse(j, NULL, &m, err), DRV_OK); /* and from its shape */
	drv_oci_manifest_clear(&m);
}

static void index_pick(void **state)
{
	struct drv_oci_manifest m;
	const struct drv_oci_desc *d;
	char err[256];
	const char *j =
	        "{\"schemaVersion\":2,\"mediaType\":\"" DRV_MT_DOCKER_LIST "\",\"manifests\":["
	        "{\"mediaType\":\"" DRV_MT_DOCKER_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":5,"
	        "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
	        "{\"mediaType\":\"" DRV_MT_DOCKER_MANIFEST "\",\"digest\":\"" D2 "\",\"size\":6,"
	        "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
	        "{\"mediaType\":\"" DRV_MT_OCI_MANIFEST "\",\"digest\":\"" D3 "\",\"size\":7,"
	        "\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}}]}";
	(void)state;
	assert_int_equal(parse(j, NULL, &m, err), DRV_OK);
	assert_int_equal(m.kind, DRV_OCI_INDEX);
	assert_int_equal(m.n_entries, 3);
	assert_int_equal(drv_oci_index_pick(&m, "linux", "amd64", &d), DRV_OK);
	assert_string_equal(d->digest, D2);
	assert_int_equal(drv_oci_index_pick(&m, "linux", "s390x", &d), DRV_ENOENT);
	drv_oci_manifest_clear(&m);
}

static void refusals(void **state)
{
	struct drv_oci_manifest m;
	char err[256];
	(void)state;
	assert_int_equal(parse("{\"schemaVersion\":1,\"fsLayers\":[]}", NULL, &m, err),
	                 DRV_EDECODE);
	assert_non_null(strstr(err, "schemaVersion 1"));
	assert_int_equal(parse("{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"application/"
	                       "vnd.oci.image.layer.v1.tar\",\"digest\":\"sha512:ab\",\"size\":1}],"
	                       "\"config\":{\"digest\":\"" D1 "\",\"size\":1}}",
	                       NULL, &m, err),
	                 DRV_EDECODE);
	assert_non_null(strstr(err, "only sha256"));
	assert_int_equal(parse("{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\",\"size\":1},"
	                       "\"layers\":[{\"mediaType\":\"text/plain\",\"digest\":\"" D2
	                       "\",\"size\":1}]}",
	                       NULL, &m, err),
	                 DRV_EDECODE);
	assert_non_null(strstr(err, "layers[0]"));
	assert_int_equal(parse("{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1
	                       "\",\"size\":-1},"
	                       "\"layers\":[]}",
	                       NULL, &m, err),
	                 DRV_EDECODE);
	assert_int_equal(parse("{\"schemaVersion\":2,", NULL, &m, err), DRV_EDECODE);
	assert_non_null(strstr(err, "invalid JSON"));
	assert_int_equal(parse("[]", NULL, &m, err), DRV_EDECODE);
	assert_int_equal(
	        parse("{\"schemaVersion\":2,\"mediaType\":\"application/x-nope\"}", NULL, &m, err),
	        DRV_EDECODE);
}

static void too_many_layers(void **state)
{
	static char big[200000];
	struct drv_oci_manifest m;
	char err[256];
	size_t n;
	(void)state;
	n = (size_t)snprintf(big, sizeof(big),
	                     "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1
	                     "\",\"size\":1},\"layers\":[");
	for (int i = 0; i <= DRV_OCI_MAX_ENTRIES; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n,
		                      "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
		                      "\"digest\":\"" D2 "\",\"size\":1}",
		                      i ? "," : "");
	snprintf(big + n, sizeof(big) - n, "]}");
	assert_int_equal(parse(big, NULL, &m, err), DRV_EDECODE);
	assert_non_null(strstr(err, "more than"));
}

static void refs(void **state)
{
	struct drv_oci_ref r;
	char err[256];
	(void)state;
	assert_int_equal(drv_oci_ref_parse("127.0.0.1:5000/berrys/api:2.4.0@" D1, &r, err, 256),
	                 DRV_OK);
	assert_string_equal(r.registry, "127.0.0.1:5000");
	assert_string_equal(r.repository, "berrys/api");
	assert_string_equal(r.tag, "2.4.0");
	assert_string_equal(r.digest, D1);
	drv_oci_ref_clear(&r);
	assert_int_equal(drv_oci_ref_parse("busybox", &r, err, 256), DRV_OK);
	assert_string_equal(r.registry, "registry-1.docker.io");
	assert_string_equal(r.repository, "library/busybox");
	assert_string_equal(r.tag, "");
	drv_oci_ref_clear(&r);
	assert_int_equal(drv_oci_ref_parse("localhost/x/y:1", &r, err, 256), DRV_OK);
	assert_string_equal(r.registry, "localhost");
	drv_oci_ref_clear(&r);
	assert_int_equal(drv_oci_ref_parse("oci-layout:/srv/img:1.0@" D2, &r, err, 256), DRV_OK);
	assert_string_equal(r.layout_path, "/srv/img");
	assert_string_equal(r.tag, "1.0");
	assert_string_equal(r.digest, D2);
	drv_oci_ref_clear(&r);
	assert_int_equal(drv_oci_ref_parse("oci-layout:relative", &r, err, 256), DRV_EINVAL);
	assert_int_equal(drv_oci_ref_parse("Upper/Case", &r, err, 256), DRV_EINVAL);
	assert_int_equal(drv_oci_ref_parse("a/b:bad tag", &r, err, 256), DRV_EINVAL);
	assert_int_equal(drv_oci_ref_parse("a/b@sha256:short", &r, err, 256), DRV_EINVAL);
	assert_int_equal(drv_oci_ref_parse("", &r, err, 256), DRV_EINVAL);
}

static void digests(void **state)
{
	char d[DRV_DIGEST_STR];
	(void)state;
	assert_int_equal(drv_sha256_buf("abc", 3, d), DRV_OK);
	assert_string_equal(
	        d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_true(drv_digest_valid(d));
	assert_false(drv_digest_valid(
	        "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
	assert_false(drv_digest_valid("md5:abc"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(oci_manifest),    cmocka_unit_test(kind_from_content_type),
	        cmocka_unit_test(index_pick),      cmocka_unit_test(refusals),
	        cmocka_unit_test(too_many_layers), cmocka_unit_test(refs),
	        cmocka_unit_test(digests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
