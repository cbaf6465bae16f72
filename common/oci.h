/*
 * oci.h: image references and an OCI Distribution (registry v2) client.
 *
 * Shared by the coordinator (which resolves the tags of a plan to digests
 * when a deployment is submitted, so every host runs the same bytes) and the
 * agent's puller (which streams blobs through drv_oci_get_blob).
 *
 * The client speaks HTTPS, or plain HTTP when opts.insecure is set (tests,
 * air-gapped labs), sends the four manifest Accept types, answers a
 * WWW-Authenticate Bearer challenge by fetching a token from the realm (with
 * basic credentials when given) and retrying once, and follows redirects
 * (curl drops our Authorization header when the host changes). Every
 * response body is size-capped (an error body at ERRBODY_MAX: the transfer
 * ends there); a transfer that moves fewer than 1 byte/s for opts.stall_s
 * seconds fails as stalled; a connection must open within
 * opts.connect_timeout_s. Every wait is bounded by opts.deadline_ms and
 * ended within DRV_OCI_POLL_MS once *opts.cancel is true
 * (DRV_ETIMEDOUT "deadline passed", DRV_ECANCELED).
 *
 * Network errors and 5xx answers are DRV_EIO (worth a retry), 404 is
 * DRV_ENOENT, 401/403 after auth DRV_EPERM, others DRV_EINVAL; err always
 * says what was asked of whom and what came back.
 */
#ifndef DRV_OCI_H
#define DRV_OCI_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

#define DRV_OCI_LAYOUT_PREFIX "oci-layout:"

struct drv_oci_ref {
	char *registry;    /* "127.0.0.1:5000", "registry-1.docker.io"; NULL for a layout */
	char *repository;  /* "berrys/berry"; NULL for a layout */
	char *tag;         /* "" when absent */
	char *digest;      /* "" when absent */
	char *layout_path; /* oci-layout:PATH source, else NULL */
};

/* Parse "[host[:port]/]name[:tag][@sha256:...]" or "oci-layout:PATH[:tag][@sha256:...]"
 * (a ":tag" of a layout must come after the last '/'). Docker Hub names get
 * the "library/" prefix. On success free with drv_oci_ref_clear. */
int drv_oci_ref_parse(const char *s, struct drv_oci_ref *out, char *err, size_t err_size);
void drv_oci_ref_clear(struct drv_oci_ref *r);

#define DRV_OCI_POLL_MS     100   /* how often a transfer looks at cancel and the deadline */
#define DRV_OCI_RESOLVE_MS  60000 /* drv_oci_resolve without a deadline of its own */
#define DRV_OCI_ERRBODY_MAX 2048  /* of a non-2xx answer, kept for the error message */

struct drv_oci_opts {
	int insecure;              /* http:// instead of https:// */
	long stall_s;              /* 0 = 30 */
	long connect_timeout_s;    /* 0 = 10 */
	int64_t deadline_ms;       /* monotonic (drv_mono_ms); 0 = none */
	const atomic_bool *cancel; /* true ends every transfer; may be NULL */
	const char *username;      /* optional basic credentials for the token realm */
	const char *password;
};

struct drv_oci_client;

/* A client for one repository of one registry (not a layout). */
int drv_oci_client_new(const struct drv_oci_ref *ref, const struct drv_oci_opts *opts,
                       struct drv_oci_client **out);
void drv_oci_client_free(struct drv_oci_client *c);

struct drv_oci_doc {
	char *data; /* malloc'd, NUL-terminated */
	size_t len;
	char media_type[128];
	char digest[DRV_DIGEST_STR]; /* sha256 of data, computed here */
};

/* GET a manifest by tag or digest (at most DRV_OCI_MANIFEST_MAX bytes). When
 * `ref` is a digest the body must hash to it, else DRV_EDECODE ("digest
 * mismatch"). On success free *out with drv_oci_doc_clear. */
int drv_oci_get_manifest(struct drv_oci_client *c, const char *ref, struct drv_oci_doc *out,
                         char *err, size_t err_size);
void drv_oci_doc_clear(struct drv_oci_doc *d);

/* Blob body sink, given the HTTP status of the answer the bytes belong to
 * (200 or 206): return 0 to go on, non-zero to abort the transfer. */
typedef int (*drv_oci_sink_fn)(const void *data, size_t len, long status, void *arg);

/*
 * GET a blob from `offset` (a Range request when offset > 0). *status gets
 * the HTTP status of the final answer (200, or 206 when the range was
 * honoured: a 200 to a range request means the body starts at 0). Only
 * a 2xx body reaches the sink.
 */
int drv_oci_get_blob(struct drv_oci_client *c, const char *digest, uint64_t offset,
                     drv_oci_sink_fn sink, void *arg, long *status, char *err, size_t err_size);

/* Tag -> digest for a reference (registry or layout). A reference that
 * already has a digest is returned as is (after validation). */
int drv_oci_resolve(const char *reference, const struct drv_oci_opts *opts,
                    char digest[DRV_DIGEST_STR], char *err, size_t err_size);

/* The manifest descriptor in an OCI layout's index.json for tag (or the only
 * one when tag is ""). */
int drv_oci_layout_resolve(const char *layout_path, const char *tag, char digest[DRV_DIGEST_STR],
                           char *err, size_t err_size);

#endif
