/*
 * test_oci_client.c: the registry client (common/oci.c) against an
 * in-process HTTP server (libmicrohttpd) playing a registry that demands a
 * bearer token: the 401 challenge, the token fetch, the retry with the
 * token, tag resolution, the digest check of manifests, ranges and errors.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "oci.h"
#include "oci_manifest.h"

static struct MHD_Daemon *d;
static unsigned port;
static int token_requests, bad_digest;
static char manifest[] = "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:1111111111111111"
                         "111111111111111111111111111111111111111111111111\",\"size\":1},"
                         "\"layers\":[]}";
static char blob[] = "0123456789abcdefghij";
static char blob_digest[DRV_DIGEST_STR], manifest_digest[DRV_DIGEST_STR];

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body,
                             const char *ctype, const char *hname, const char *hval)
{
	struct MHD_Response *r =
	        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	if (ctype != NULL)
		MHD_add_response_header(r, "Content-Type", ctype);
	if (hname != NULL)
		MHD_add_response_header(r, hname, hval);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **ptr)
{
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
	char challenge[256], path[128];

	(void)cls, (void)method, (void)version, (void)upload, (void)upload_size, (void)ptr;
	if (strcmp(url, "/token") == 0) {
		const char *scope = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "scope");
		token_requests++;
		if (scope == NULL || strcmp(scope, "repository:team/app:pull") != 0)
			return reply(c, 400, "bad scope", NULL, NULL, NULL);
		return reply(c, 200, "{\"token\":\"sekrit\"}", "application/json", NULL, NULL);
	}
	if (auth == NULL || strcmp(auth, "Bearer sekrit") != 0) {
		snprintf(challenge, sizeof(challenge),
		         "Bearer realm=\"http://127.0.0.1:%u/token\",service=\"test\","
		         "scope=\"repository:team/app:pull\"",
		         port);
		return reply(c, 401, "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}",
		             "application/json", "WWW-Authenticate", challenge);
	}
	if (strcmp(url, "/v2/team/app/manifests/1.0") == 0 ||
	    (strncmp(url, "/v2/team/app/manifests/sha256:", 30) == 0 &&
	     strcmp(url + 23, manifest_digest) == 0)) {
		if (bad_digest)
			return reply(c, 200, "{\"tampered\":true}", DRV_MT_OCI_MANIFEST, NULL,
			             NULL);
		return reply(c, 200, manifest, DRV_MT_OCI_MANIFEST, NULL, NULL);
	}
	snprintf(path, sizeof(path), "/v2/team/app/blobs/%s", blob_digest);
	if (strcmp(url, path) == 0) {
		if (range != NULL && strcmp(range, "bytes=5-") == 0)
			return reply(c, 206, blob + 5, NULL, "Content-Range", "bytes 5-19/20");
		return reply(c, 200, blob, NULL, NULL, NULL);
	}
	return reply(
	        c, 404,
	        "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}",
	        "application/json", NULL, NULL);
}

static int setup(void **state)
{
	const union MHD_DaemonInfo *info;
	(void)state;
	drv_sha256_buf(blob, strlen(blob), blob_digest);
	drv_sha256_buf(manifest, strlen(manifest), manifest_digest);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only */
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handle, NULL,
	                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
	if (d == NULL)
		return -1;
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	port = info->port;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	MHD_stop_daemon(d);
	return 0;
}

static struct drv_oci_client *client(void)
{
	struct drv_oci_ref ref;
	struct drv_oci_client *c;
	struct drv_oci_opts o = {.insecure = 1, .stall_s = 5};
	char s[128], err[256];

	snprintf(s, sizeof(s), "127.0.0.1:%u/team/app:1.0", port);
	assert_int_equal(drv_oci_ref_parse(s, &ref, err, sizeof(err)), DRV_OK);
	assert_int_equal(drv_oci_client_new(&ref, &o, &c), DRV_OK);
	drv_oci_ref_clear(&ref);
	return c;
}

static void bearer_and_resolve(void **state)
{
	struct drv_oci_opts o = {.insecure = 1};
	char s[128], digest[DRV_DIGEST_STR], err[256];
	(void)state;
	token_requests = 0;
	snprintf(s, sizeof(s), "127.0.0.1:%u/team/app:1.0", port);
	assert_int_equal(drv_oci_resolve(s, &o, digest, err, sizeof(err)), DRV_OK);
	assert_string_equal(digest, manifest_digest);
	assert_int_equal(token_requests, 1);
}

static void manifest_by_digest_verified(void **state)
{
	struct drv_oci_client *c = client();
	struct drv_oci_doc doc;
	char err[256];
	(void)state;
	assert_int_equal(drv_oci_get_manifest(c, manifest_digest, &doc, err, sizeof(err)), DRV_OK);
	assert_string_equal(doc.media_type, DRV_MT_OCI_MANIFEST);
	assert_string_equal(doc.digest, manifest_digest);
	drv_oci_doc_clear(&doc);
	bad_digest = 1;
	assert_int_equal(drv_oci_get_manifest(c, manifest_digest, &doc, err, sizeof(err)),
	                 DRV_EDECODE);
	assert_non_null(strstr(err, "digest mismatch"));
	bad_digest = 0;
	drv_oci_client_free(c);
}

static char got[64];
static size_t got_len;
static long got_status;

static int sink(const void *data, size_t len, long status, void *arg)
{
	(void)arg;
	got_status = status;
	if (got_len + len > sizeof(got))
		return 1;
	memcpy(got + got_len, data, len);
	got_len += len;
	return 0;
}

static void blobs_and_ranges(void **state)
{
	struct drv_oci_client *c = client();
	char err[256];
	long status = 0;
	(void)state;
	got_len = 0;
	assert_int_equal(drv_oci_get_blob(c, blob_digest, 0, sink, NULL, &status, err, sizeof(err)),
	                 DRV_OK);
	assert_int_equal(status, 200);
	assert_int_equal(got_len, 20);
	got_len = 0;
	assert_int_equal(drv_oci_get_blob(c, blob_digest, 5, sink, NULL, &status, err, sizeof(err)),
	                 DRV_OK);
	assert_int_equal(status, 206);
	assert_int_equal(got_status, 206);
	assert_memory_equal(got, blob + 5, 15);
	drv_oci_client_free(c);
}

static void errors_are_clear(void **state)
{
	struct drv_oci_client *c = client();
	struct drv_oci_doc doc;
	char err[256];
	(void)state;
	assert_int_equal(drv_oci_get_manifest(c, "2.0", &doc, err, sizeof(err)), DRV_ENOENT);
	assert_non_null(strstr(err, "HTTP 404 MANIFEST_UNKNOWN: manifest unknown"));
	assert_non_null(strstr(err, "/v2/team/app/manifests/2.0"));
	drv_oci_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(bearer_and_resolve),
	        cmocka_unit_test(manifest_by_digest_verified),
	        cmocka_unit_test(blobs_and_ranges),
	        cmocka_unit_test(errors_are_clear),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
