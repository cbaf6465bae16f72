/*
 * oci_manifest.h: parsing OCI and Docker v2 image manifests and indexes
 * (manifest lists). Pure: a buffer in, a validated structure out, no I/O.
 *
 * Accepted: OCI image manifest and index (v1), Docker schema 2 manifest and
 * manifest list. Refused with a clear message: Docker schema 1, unknown media
 * types, digests other than sha256, more than DRV_OCI_MAX_ENTRIES entries,
 * buffers over DRV_OCI_MANIFEST_MAX.
 */
#ifndef DRV_OCI_MANIFEST_H
#define DRV_OCI_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

#define DRV_OCI_MANIFEST_MAX (4u << 20)
#define DRV_OCI_MAX_ENTRIES  1000

#define DRV_MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define DRV_MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define DRV_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define DRV_MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
/* The Accept header value every manifest request sends. */
#define DRV_OCI_ACCEPT                                                                             \
	DRV_MT_OCI_MANIFEST ", " DRV_MT_OCI_INDEX ", " DRV_MT_DOCKER_MANIFEST                      \
	                    ", " DRV_MT_DOCKER_LIST

enum drv_oci_kind { DRV_OCI_MANIFEST, DRV_OCI_INDEX };

/* How a layer blob is compressed. */
enum drv_oci_compression { DRV_OCI_PLAIN, DRV_OCI_GZIP, DRV_OCI_ZSTD };

struct drv_oci_desc {
	char media_type[128];
	char digest[DRV_DIGEST_STR];
	int64_t size;
	char os[32];                          /* index entries only */
	char arch[32];                        /* index entries only */
	char variant[32];                     /* index entries only */
	enum drv_oci_compression compression; /* layers only */
};

struct drv_oci_manifest {
	enum drv_oci_kind kind;
	char media_type[128];
	struct drv_oci_desc config;   /* manifests only */
	struct drv_oci_desc *entries; /* layers of a manifest, manifests of an index */
	size_t n_entries;
};

/*
 * Parse buf (len bytes). content_type is the registry's Content-Type (or
 * NULL): it decides the kind when the document has no mediaType field. On
 * failure err gets "manifest: <what and where>". *out is written only on
 * success; free it with drv_oci_manifest_clear.
 */
int drv_oci_manifest_parse(const char *buf, size_t len, const char *content_type,
                           struct drv_oci_manifest *out, char *err, size_t err_size);
void drv_oci_manifest_clear(struct drv_oci_manifest *m);

/* The index entry for os/arch (e.g. "linux", "amd64"), ignoring attestation
 * entries ("unknown" platforms). DRV_ENOENT when there is none. */
int drv_oci_index_pick(const struct drv_oci_manifest *idx, const char *os, const char *arch,
                       const struct drv_oci_desc **out);

#endif
