/*
 * puller.h: the image puller: blobs from a registry (OCI Distribution API,
 * through common/oci.h) or an oci-layout directory into a content-addressed
 * cache, verified by sha256 while they stream, then unpacked into a release
 * directory.
 *
 * On disk:
 *   CACHE/blobs/sha256/<hex>     verified blobs (manifests, configs, layers),
 *                                shared by every service
 *   CACHE/partial/<hex>          a download in progress (resumed with Range;
 *                                flock'ed so one puller fetches a blob once)
 *   RELEASES/<service>/<hex>/    one release: rootfs/, image-config.json,
 *                                blobs (the digests it uses, for GC)
 *   RELEASES/<service>/.tmp-*    a release being unpacked; renamed into place
 *                                only when complete, so a failure or a crash
 *                                leaves nothing half-installed
 *
 * Retries: network errors, 5xx, stalls and truncated bodies are retried
 * (PULLER_ATTEMPTS times, backoff from 250 ms doubling to 4 s), resuming a
 * partial blob where it stopped. A pull ends, whatever it is doing (a
 * transfer, a backoff), within DRV_OCI_POLL_MS of its deadline_ms (the
 * step's: DRV_ETIMEDOUT) or of the cancel flag (DRV_ECANCELED). A digest mismatch, a 404 or an auth
 * failure is not retried. Layers are hashed again while they are unpacked, so a cache file damaged
 * on disk is caught (and dropped) too.
 */
#ifndef DRV_AGENT_PULLER_H
#define DRV_AGENT_PULLER_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"
#include "stop_token.h"

#define PULLER_ATTEMPTS 5

struct puller;

struct puller_config {
	const char *cache_dir;
	const char *releases_dir;
	int insecure; /* http:// registries */
	long stall_s; /* a transfer slower than 1 byte/s this long fails; 0 = 30 */
	const struct stop_token *cancel; /* set: transfers abort (agent stopping); may be NULL */
	/* Set: registry pulls run in the unprivileged fetch helper, this binary
	 * exec'd (fetch_helper.h), and the image is then read from the cache and
	 * verified here. NULL: in this process (tests, benchmarks, the helper). */
	const char *fetch_exe;
	const char *fetch_user; /* NULL: the helper's default */
};

struct puller_stats {
	unsigned long long bytes_fetched; /* over the network (or copied from a layout) */
	unsigned long long bytes_cached;  /* already in the cache */
	unsigned blobs_fetched;
	unsigned blobs_cached;
	long long fetch_ms;
	long long unpack_ms;
};

int puller_new(const struct puller_config *cfg, struct puller **out);
void puller_free(struct puller *p);

/*
 * Make sure every blob of the image (index, platform manifest for
 * linux/amd64, config, layers) is in the cache, verified. `reference` is
 * where to get it (registry reference or oci-layout:PATH), `digest` the
 * pinned manifest or index digest; deadline_ms (monotonic, drv_mono_ms; 0 =
 * none) bounds the whole pull. err says what failed and where.
 */
int puller_fetch(struct puller *p, const char *reference, const char *digest, int64_t deadline_ms,
                 struct puller_stats *stats, char *err, size_t err_size);

/*
 * puller_fetch, then unpack into RELEASES/<service>/<hex of digest>/ unless
 * that release exists already. *root gets (malloc'd) the release directory
 * (its rootfs is root + "/rootfs").
 */
int puller_stage(struct puller *p, const char *service, const char *reference, const char *digest,
                 int64_t deadline_ms, char **release_dir, struct puller_stats *stats, char *err,
                 size_t err_size);

/* The release directory of (service, digest), whether or not it exists. */
int puller_release_dir(struct puller *p, const char *service, const char *digest, char **out);
/* True when that release is fully unpacked. */
int puller_has_release(struct puller *p, const char *service, const char *digest);

/*
 * Garbage collection: remove every release not in the kept (service,
 * digest) pairs, then every cached blob that no kept release uses. Waits
 * for the pulls in progress in this process (which hold a read lock).
 */
int puller_gc(struct puller *p, char *const *services, char *const *digests, size_t n);

#endif
