/* puller.c: blob cache, verified downloads with resume, release unpacking, GC. */
#include "puller.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomicfile.h"
#include "clock.h"
#include "err.h"
#include "fetch_helper.h"
#include "fsutil.h"
#include "hashring.h"
#include "log.h"
#include "oci.h"
#include "oci_manifest.h"
#include "unpack.h"
#include "unpack_helper.h"

#define BLOB_WRITE_BUF (1u << 20)

/* The ring between a blob's receiving thread and the worker that writes and
 * hashes it (hashring.h, store_slot): 4 MiB held at most, and at most one
 * wake-up of the worker per MiB (about 50 for a 50 MB layer; 256 KiB slots
 * measured slower at load 3, docs/benchmarks.md, ninth round of issue 18). A
 * blob under two slots (a config, a small layer) is written and hashed on the
 * receiving thread: starting a thread and touching the ring costs more. */
#define PULL_RING_SLOTS 4
#define PULL_RING_SLOT  (1u << 20)
#define PULL_RING_MIN   (2 * PULL_RING_SLOT)

struct puller {
	const struct stop_token *cancel;
	char *cache, *releases;
	struct drv_oci_opts opts;
	char *fetch_exe, *fetch_user; /* the fetch helper; NULL: in process */
	pthread_rwlock_t gc_lock;     /* pulls read-lock, GC write-locks */
};

/* Where blobs come from for one pull. */
struct source {
	struct drv_oci_client *client;   /* registry */
	const char *layout;              /* or an oci-layout directory */
	const char *name;                /* for messages */
	const struct stop_token *cancel; /* the puller's */
	int64_t deadline_ms;             /* monotonic; 0 = none */
	int64_t budget_ms;               /* deadline - start, for messages */
	bool offline;                    /* the fetch helper fetched: cache only */
	bool remote;                     /* a registry: fetched by the helper when there is one */
};

__attribute__((format(printf, 3, 4))) static int ferr(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
	return DRV_EINVAL;
}

int puller_new(const struct puller_config *cfg, struct puller **out)
{
	struct puller *p = calloc(1, sizeof(*p));
	char path[4096];

	if (p == NULL)
		return DRV_ENOMEM;
	p->cache = strdup(cfg->cache_dir);
	p->releases = strdup(cfg->releases_dir);
	p->cancel = cfg->cancel;
	p->opts.insecure = cfg->insecure;
	p->opts.stall_s = cfg->stall_s > 0 ? cfg->stall_s : 30;
	p->fetch_exe = cfg->fetch_exe ? strdup(cfg->fetch_exe) : NULL;
	p->fetch_user = cfg->fetch_user ? strdup(cfg->fetch_user) : NULL;
	if (p->cache == NULL || p->releases == NULL || (cfg->fetch_exe && p->fetch_exe == NULL) ||
	    (cfg->fetch_user && p->fetch_user == NULL)) {
		puller_free(p);
		return DRV_ENOMEM;
	}
	pthread_rwlock_init(&p->gc_lock, NULL);
	snprintf(path, sizeof(path), "%s/blobs/sha256", p->cache);
	drv_mkdirs(path, 0750);
	snprintf(path, sizeof(path), "%s/partial", p->cache);
	drv_mkdirs(path, 0750);
	*out = p;
	return DRV_OK;
}

void puller_free(struct puller *p)
{
	if (p == NULL)
		return;
	pthread_rwlock_destroy(&p->gc_lock);
	free(p->cache);
	free(p->releases);
	free(p->fetch_exe);
	free(p->fetch_user);
	free(p);
}

static void blob_path(struct puller *p, const char *digest, char *buf, size_t size)
{
	snprintf(buf, size, "%s/blobs/sha256/%s", p->cache, digest + 7);
}

/* --- verification of files --- */

static int hash_fd(int fd, uint64_t limit, struct drv_sha256 *h, uint64_t *n_out)
{
	char *buf = malloc(BLOB_WRITE_BUF);
	uint64_t n = 0;
	ssize_t r;

	if (buf == NULL)
		return DRV_ENOMEM;
	while (n < limit && (r = read(fd, buf, BLOB_WRITE_BUF)) > 0) {
		if ((uint64_t)r > limit - n)
			r = (ssize_t)(limit - n);
		drv_sha256_update(h, buf, (size_t)r);
		n += (uint64_t)r;
	}
	free(buf);
	*n_out = n;
	return DRV_OK;
}

/* DRV_OK when the file at path, a document (an image config), has exactly
 * this digest; hashed without libcrypto (sha256.h). Layers are hashed as
 * they are unpacked (unpack_one). */
static int verify_file(const char *path, const char *digest)
{
	char got[DRV_DIGEST_STR];
	struct drv_sha256 *h;
	uint64_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return DRV_ENOENT;
	rc = drv_sha256_new_light(&h);
	if (rc == DRV_OK)
		rc = hash_fd(fd, UINT64_MAX, h, &n);
	if (rc == DRV_OK)
		rc = drv_sha256_final(h, got);
	drv_sha256_free(h);
	close(fd);
	if (rc == DRV_OK && strcmp(got, digest) != 0)
		rc = DRV_EDECODE;
	return rc;
}

/* --- cancel and deadline --- */

/* DRV_OK while the pull may go on; else the reason, said in err (with the
 * last failure, when there was one). */
static int pull_over(const struct source *s, char *err, size_t size)
{
	char last[512];

	snprintf(last, sizeof(last), "%s", err != NULL && size > 0 ? err : "");
	if (stop_token_stopped(s->cancel))
		return ferr(err, size, "%s: pull cancelled: the agent is stopping%s%s%s", s->name,
		            last[0] ? " (during: " : "", last[0] ? last : "", last[0] ? ")" : ""),
		       DRV_ECANCELED;
	if (s->deadline_ms > 0 && drv_mono_ms() >= s->deadline_ms)
		return ferr(err, size, "%s: pull stopped at the step deadline (%lld ms)%s%s",
		            s->name, (long long)s->budget_ms, last[0] ? "; last error: " : "",
		            last[0] ? last : ""),
		       DRV_ETIMEDOUT;
	return DRV_OK;
}

/* Sleep ms between attempts, in short naps so a stop or the deadline ends
 * the wait; false when the pull must end. */
static bool backoff_nap(const struct source *s, int64_t ms)
{
	int64_t until = drv_mono_ms() + ms;

	for (;;) {
		int64_t left = until - drv_mono_ms();
		if (stop_token_stopped(s->cancel) ||
		    (s->deadline_ms > 0 && drv_mono_ms() >= s->deadline_ms))
			return false;
		if (left <= 0)
			return true;
		poll(NULL, 0, (int)(left < 50 ? left : 50));
	}
}

/* --- downloading one blob --- */

struct dl {
	const struct stop_token *cancel;
	int fd;
	struct drv_sha256 *h;  /* the ring worker's between syncs (see restart) */
	struct hashring *ring; /* writes and hashes what arrives, on its own thread */
	uint64_t have, want;   /* have: taken from the body (in the file after a sync) */
	bool too_big, resumed, store_failed;
	int store_errno; /* set by the worker, read after a sync */
};

static int restart(struct dl *d);

static int sink(const void *data, size_t len, long status, void *arg)
{
	struct dl *d = arg;
	const char *p = data;

	if (stop_token_stopped(d->cancel))
		return 1;
	if (status == 200 && d->resumed) {
		/* The registry ignored our Range: the body starts at byte 0. */
		drv_info("puller", "registry ignored the range request, fetching from 0", "");
		if (restart(d) != 0)
			return 1;
	}
	d->resumed = false;

	if (d->have + len > d->want) {
		d->too_big = true;
		return 1;
	}
	if (d->ring != NULL) {
		/* Copied into the ring; the worker writes and hashes it (store_slot). */
		if (hashring_feed(d->ring, p, len) != DRV_OK) {
			d->store_failed = true;
			return 1;
		}
		d->have += len;
		return 0;
	}
	while (len > 0) {
		ssize_t w = write(d->fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return 1;
		/* The hash takes exactly the bytes the file took, in order. */
		if (drv_sha256_update(d->h, p, (size_t)w) != DRV_OK) {
			d->store_failed = true;
			return 1;
		}
		p += w;
		len -= (size_t)w;
		d->have += (uint64_t)w;
	}
	return 0;
}

/* Rehash what a partial file holds, to resume after it. */
static int resume_state(struct dl *d)
{
	struct stat st;
	uint64_t n = 0;

	if (fstat(d->fd, &st) < 0)
		return DRV_ESYS;
	if ((uint64_t)st.st_size > d->want || st.st_size == 0)
		return restart(d);
	lseek(d->fd, 0, SEEK_SET);
	drv_sha256_reset(d->h);
	hash_fd(d->fd, (uint64_t)st.st_size, d->h, &n);
	d->have = n;
	lseek(d->fd, (off_t)n, SEEK_SET);
	return DRV_OK;
}

/* Empty the partial file, unless it is empty already: on ext4, truncating a
 * file to 0 (even an empty one) makes its close start the writeback of all
 * it holds then (auto_da_alloc), about 5 ms for a 50 MB layer. */
static int restart(struct dl *d)
{
	struct stat st;

	if (d->ring != NULL)
		hashring_sync(
		        d->ring); /* the worker uses fd and h; its failure no longer matters */
	d->store_failed = false;
	if (fstat(d->fd, &st) < 0 || (st.st_size > 0 && ftruncate(d->fd, 0) < 0))
		return DRV_ESYS;
	lseek(d->fd, 0, SEEK_SET);
	d->have = 0;
	return drv_sha256_reset(d->h);
}

static int copy_from_layout(const struct source *s, const char *digest, struct dl *d, char *err,
                            size_t size)
{
	char path[4096], *buf;
	ssize_t r;
	int fd, rc = DRV_OK;

	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", s->layout, digest + 7);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ferr(err, size, "%s: blob %s is missing (%s)", s->name, digest,
		            strerror(errno)),
		       DRV_ENOENT;
	buf = malloc(BLOB_WRITE_BUF);
	if (buf == NULL) {
		close(fd);
		return DRV_ENOMEM;
	}
	restart(d);
	while (rc == DRV_OK && (r = read(fd, buf, BLOB_WRITE_BUF)) > 0)
		if (sink(buf, (size_t)r, 206, d) != 0)
			rc = (ferr(err, size, "%s: blob %s: cannot store it: %s", s->name, digest,
			           strerror(errno)),
			      DRV_EIO);
	free(buf);
	close(fd);
	return rc;
}

/* One attempt: fetch from d->have on. */
static int attempt(const struct source *s, const char *digest, struct dl *d, char *err, size_t size)
{
	long status = 0;
	int rc;

	if (s->layout != NULL) {
		rc = copy_from_layout(s, digest, d, err, size);
	} else {
		d->resumed = d->have > 0;
		rc = drv_oci_get_blob(s->client, digest, d->have, sink, d, &status, err, size);
		d->resumed = false;
	}
	/* Every byte taken is in the file and the hash now, or the file is not
	 * to be trusted: emptied, and the blob fails (a full disk is not retried). */
	if (d->ring != NULL && hashring_sync(d->ring) != DRV_OK)
		d->store_failed = true;
	if (d->store_failed) {
		int e = d->store_errno ? d->store_errno : EIO;
		restart(d);
		return ferr(err, size, "%s: blob %s: cannot write or hash the partial file: %s",
		            s->name, digest, strerror(e)),
		       DRV_ESYS;
	}
	if (d->too_big)
		return ferr(err, size,
		            "%s: blob %s is larger than the %llu bytes its descriptor"
		            " says",
		            s->name, digest, (unsigned long long)d->want),
		       DRV_EDECODE;
	return rc;
}

static bool retryable(int rc)
{
	return rc == DRV_EIO || rc == DRV_ETIMEDOUT;
}

/* The attempts at one blob, resuming after what arrived; d->have bytes are
 * in the file when it returns DRV_OK. */
static int attempts(const struct source *s, const char *digest, uint64_t want, struct dl *d,
                    char *err, size_t size)
{
	int64_t backoff = 250;
	int rc = DRV_EIO;

	for (int i = 0; i < PULLER_ATTEMPTS; i++) {
		if (d->have < want)
			rc = attempt(s, digest, d, err, size);
		else
			rc = DRV_OK;
		if (rc == DRV_OK && d->have < want)
			rc = (ferr(err, size, "%s: blob %s truncated: got %llu of %llu bytes",
			           s->name, digest, (unsigned long long)d->have,
			           (unsigned long long)want),
			      DRV_EIO);
		if (rc == DRV_ECANCELED || (rc != DRV_OK && pull_over(s, NULL, 0) != DRV_OK))
			return pull_over(s, err, size); /* says why, with the last error */
		if (rc == DRV_OK || !retryable(rc) || s->layout != NULL)
			break;
		if (i + 1 == PULLER_ATTEMPTS && d->have < want) {
			char last[512];
			snprintf(last, sizeof(last), "%s", err);
			ferr(err, size,
			     "%s: blob %s truncated: got %llu of %llu bytes after %d attempts"
			     " (last error: %s)",
			     s->name, digest, (unsigned long long)d->have, (unsigned long long)want,
			     PULLER_ATTEMPTS, last);
			break;
		}
		drv_warn("puller", "blob download failed, retrying",
		         "blob=%.19s attempt=%d error=\"%s\"", digest, i + 1, err);
		if (!backoff_nap(s, backoff))
			return pull_over(s, err, size);
		backoff = backoff * 2 > 4000 ? 4000 : backoff * 2;
	}
	return rc;
}

/* On the ring's worker: a slot written to the partial file, then hashed, so
 * the digest is of exactly the bytes the file holds. */
static int store_slot(void *arg, const void *data, size_t len)
{
	struct dl *d = arg;
	const char *p = data;
	size_t n = len;

	while (n > 0) {
		ssize_t w = write(d->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			d->store_errno = w < 0 ? errno : EIO;
			return 1;
		}
		p += w;
		n -= (size_t)w;
	}
	return drv_sha256_update(d->h, data, len) != DRV_OK;
}

static int download(const struct source *s, const char *digest, uint64_t want, struct dl *d,
                    char *err, size_t size)
{
	char got[DRV_DIGEST_STR];
	int rc = DRV_OK;

	resume_state(d);
	if (d->have > 0)
		drv_info("puller", "resuming a partial blob", "blob=%.19s have=%llu want=%llu",
		         digest, (unsigned long long)d->have, (unsigned long long)want);
	if (want - d->have >= PULL_RING_MIN)
		rc = hashring_new(store_slot, d, PULL_RING_SLOTS, PULL_RING_SLOT, &d->ring);
	if (rc != DRV_OK)
		return ferr(err, size, "%s: blob %s: cannot start the hash thread", s->name,
		            digest),
		       rc;
	rc = attempts(s, digest, want, d, err, size);
	/* The digest of every byte written, the last slot hashed too. */
	if (rc == DRV_OK && ((d->ring != NULL && hashring_sync(d->ring) != DRV_OK) ||
	                     drv_sha256_final(d->h, got) != DRV_OK))
		rc = (ferr(err, size, "%s: blob %s: hash failed", s->name, digest), DRV_EIO);
	if (rc == DRV_OK && strcmp(got, digest) != 0) {
		restart(d);
		rc = (ferr(err, size, "%s: blob %s failed verification: its content hashes to %s",
		           s->name, digest, got),
		      DRV_EDECODE);
	}
	hashring_free(d->ring);
	d->ring = NULL;
	return rc;
}

/* Fetch one blob into the cache unless it is there. */
static int ensure_blob(struct puller *p, const struct source *s, const char *digest, uint64_t want,
                       struct puller_stats *st, char *err, size_t size)
{
	char final[4096], part[4096];
	struct stat sb;
	struct dl d = {.want = want, .cancel = s->cancel};
	int rc;

	blob_path(p, digest, final, sizeof(final));
	if (stat(final, &sb) == 0 && (uint64_t)sb.st_size == want) {
		st->blobs_cached++;
		st->bytes_cached += want;
		return DRV_OK;
	}
	if (s->offline)
		return ferr(err, size, "%s: blob %s is not in the cache after the fetch helper",
		            s->name, digest),
		       DRV_ENOENT;
	snprintf(part, sizeof(part), "%s/partial/%s", p->cache, digest + 7);
	d.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (d.fd < 0)
		return ferr(err, size, "cannot open %s: %s", part, strerror(errno)), DRV_ESYS;
	flock(d.fd, LOCK_EX); /* another worker fetching the same blob finishes first */
	if (stat(final, &sb) == 0 && (uint64_t)sb.st_size == want) {
		close(d.fd);
		st->blobs_cached++;
		st->bytes_cached += want;
		return DRV_OK;
	}
	rc = drv_sha256_new(&d.h);
	if (rc == DRV_OK)
		rc = download(s, digest, want, &d, err, size);
	/* No fsync: the cache is content-addressed and every blob is hashed again
	 * before use (layers before unpacking, manifests when read), so a blob
	 * damaged by a power loss is caught and fetched again; the rename keeps a
	 * crash from exposing a partial file under a final name. */
	if (rc == DRV_OK && rename(part, final) < 0)
		rc = (ferr(err, size, "cannot store blob %s: %s", digest, strerror(errno)),
		      DRV_ESYS);
	if (rc == DRV_OK) {
		st->blobs_fetched++;
		st->bytes_fetched += want;
	}
	drv_sha256_free(d.h);
	close(d.fd);
	return rc;
}

/* --- manifests --- */

/* A manifest or index by digest: from the cache, or fetched and cached. */
static int get_doc(struct puller *p, const struct source *s, const char *digest, char **buf,
                   size_t *len, char *ctype, size_t ctsize, char *err, size_t size)
{
	char path[4096], got[DRV_DIGEST_STR];
	struct drv_oci_doc doc;
	int rc;

	ctype[0] = '\0';
	blob_path(p, digest, path, sizeof(path));
	if (drv_read_file(path, DRV_OCI_MANIFEST_MAX, buf, len) == DRV_OK) {
		if (drv_sha256_buf(*buf, *len, got) == DRV_OK && strcmp(got, digest) == 0)
			return DRV_OK;
		free(*buf);
		unlink(path);
	}
	if (s->offline)
		return ferr(err, size, "%s: manifest %s is not in the cache after the fetch helper",
		            s->name, digest),
		       DRV_ENOENT;
	if (s->layout != NULL) {
		char lp[4096];
		snprintf(lp, sizeof(lp), "%s/blobs/sha256/%s", s->layout, digest + 7);
		rc = drv_read_file(lp, DRV_OCI_MANIFEST_MAX, buf, len);
		if (rc != DRV_OK)
			return ferr(err, size, "%s: manifest %s: %s", s->name, digest,
			            drv_strerror(rc)),
			       rc;
		if (drv_sha256_buf(*buf, *len, got) != DRV_OK || strcmp(got, digest) != 0) {
			free(*buf);
			return ferr(err, size, "%s: manifest %s failed verification (hashes to %s)",
			            s->name, digest, got),
			       DRV_EDECODE;
		}
	} else {
		int64_t backoff = 250;
		for (int i = 0; i < PULLER_ATTEMPTS; i++) {
			rc = drv_oci_get_manifest(s->client, digest, &doc, err, size);
			if (rc == DRV_ECANCELED ||
			    (rc != DRV_OK && pull_over(s, NULL, 0) != DRV_OK))
				return pull_over(s, err, size);
			if (rc == DRV_OK || !retryable(rc) || i + 1 == PULLER_ATTEMPTS)
				break;
			drv_warn("puller", "manifest fetch failed, retrying",
			         "digest=%.19s attempt=%d error=\"%s\"", digest, i + 1, err);
			if (!backoff_nap(s, backoff))
				return pull_over(s, err, size);
			backoff = backoff * 2 > 4000 ? 4000 : backoff * 2;
		}
		if (rc != DRV_OK)
			return rc;
		*buf = doc.data;
		*len = doc.len;
		snprintf(ctype, ctsize, "%s", doc.media_type);
	}
	/* No fsync, as for blobs: the cached copy is hashed whenever it is read. */
	rc = drv_write_replace(path, *buf, *len, 0640);
	if (rc != DRV_OK)
		drv_warn("puller", "cannot cache a manifest", "path=%s", path);
	return DRV_OK;
}

/* The image manifest for linux/amd64, following an index. */
static int get_manifest(struct puller *p, const struct source *s, const char *digest,
                        struct drv_oci_manifest *m, char mdigest[DRV_DIGEST_STR], char *err,
                        size_t size)
{
	char ctype[128], *buf = NULL;
	const struct drv_oci_desc *pick;
	size_t len = 0;
	int rc;

	snprintf(mdigest, DRV_DIGEST_STR, "%s", digest);
	for (int depth = 0; depth < 2; depth++) {
		rc = get_doc(p, s, mdigest, &buf, &len, ctype, sizeof(ctype), err, size);
		if (rc != DRV_OK)
			return rc;
		rc = drv_oci_manifest_parse(buf, len, ctype[0] ? ctype : NULL, m, err, size);
		free(buf);
		if (rc != DRV_OK)
			return rc;
		if (m->kind == DRV_OCI_MANIFEST)
			return DRV_OK;
		if (drv_oci_index_pick(m, "linux", "amd64", &pick) != DRV_OK) {
			drv_oci_manifest_clear(m);
			return ferr(err, size, "%s: image index %s has no linux/amd64 manifest",
			            s->name, mdigest),
			       DRV_ENOENT;
		}
		snprintf(mdigest, DRV_DIGEST_STR, "%s", pick->digest);
		drv_oci_manifest_clear(m);
	}
	return ferr(err, size, "%s: nested image indexes are not supported", s->name), DRV_EINVAL;
}

static int open_source(struct puller *p, const char *reference, int64_t deadline_ms,
                       struct source *s, struct drv_oci_ref *ref, char *err, size_t size)
{
	struct drv_oci_opts o = p->opts;
	int rc = drv_oci_ref_parse(reference, ref, err, size);

	memset(s, 0, sizeof(*s));
	s->name = reference;
	s->cancel = p->cancel;
	s->deadline_ms = deadline_ms;
	s->budget_ms = deadline_ms > 0 ? deadline_ms - drv_mono_ms() : 0;
	if (rc != DRV_OK)
		return rc;
	if ((rc = pull_over(s, err, size)) != DRV_OK)
		return rc;
	if (ref->layout_path != NULL) {
		s->layout = ref->layout_path;
		return DRV_OK;
	}
	s->remote = true;
	if (p->fetch_exe != NULL)
		return DRV_OK; /* the helper talks to the registry: no client (nor libcurl) here */
	o.cancel = p->cancel != NULL ? &p->cancel->stopped : NULL;
	o.deadline_ms = deadline_ms;
	return drv_oci_client_new(ref, &o, &s->client);
}

/* A registry pull in the fetch helper; then the source is the cache alone,
 * so that fetch_all verifies what the helper left there. */
static int via_helper(struct puller *p, const char *reference, const char *digest, struct source *s,
                      struct puller_stats *st, char *err, size_t size)
{
	struct fetch_helper_cfg cfg = {.exe = p->fetch_exe,
	                               .cache = p->cache,
	                               .user = p->fetch_user,
	                               .insecure = p->opts.insecure,
	                               .stall_s = p->opts.stall_s,
	                               .cancel = p->cancel,
	                               .deadline_ms = s->deadline_ms};
	struct fetch_done d;
	int rc;

	if (p->fetch_exe == NULL || !s->remote)
		return DRV_OK;
	rc = fetch_helper_run(&cfg, reference, digest, &d, err, size);
	if (rc != DRV_OK)
		return rc;
	drv_info("puller", "fetch helper done",
	         "image=%s blobs_fetched=%u bytes_fetched=%llu helper_uid=%u helper_gid=%u "
	         "no_new_privs=%d",
	         reference, d.blobs_fetched, (unsigned long long)d.bytes_fetched, d.uid, d.gid,
	         d.no_new_privs ? 1 : 0);
	st->bytes_fetched = d.bytes_fetched;
	st->blobs_fetched = d.blobs_fetched;
	drv_oci_client_free(s->client);
	s->client = NULL;
	s->offline = true;
	return DRV_OK;
}

/* fetch_all, counting only what was fetched here (the helper counted its own). */
static int fetch_all(struct puller *p, const struct source *s, const char *digest,
                     struct drv_oci_manifest *m, char mdigest[DRV_DIGEST_STR],
                     struct puller_stats *st, char *err, size_t size);

static int fetch_verified(struct puller *p, const char *reference, const char *digest,
                          struct source *s, struct drv_oci_manifest *m,
                          char mdigest[DRV_DIGEST_STR], struct puller_stats *st, char *err,
                          size_t size)
{
	struct puller_stats offline = {0};
	int rc = via_helper(p, reference, digest, s, st, err, size);

	if (rc != DRV_OK)
		return rc;
	rc = fetch_all(p, s, digest, m, mdigest, s->offline ? &offline : st, err, size);
	if (s->offline && offline.blobs_cached >= st->blobs_fetched &&
	    offline.bytes_cached >= st->bytes_fetched) {
		st->blobs_cached = offline.blobs_cached - st->blobs_fetched;
		st->bytes_cached = offline.bytes_cached - st->bytes_fetched;
	}
	return rc;
}

static int fetch_all(struct puller *p, const struct source *s, const char *digest,
                     struct drv_oci_manifest *m, char mdigest[DRV_DIGEST_STR],
                     struct puller_stats *st, char *err, size_t size)
{
	int rc = get_manifest(p, s, digest, m, mdigest, err, size);
	char path[4096];

	if (rc == DRV_OK)
		rc = ensure_blob(p, s, m->config.digest, (uint64_t)m->config.size, st, err, size);
	if (rc == DRV_OK && s->offline) { /* layers are hashed again as they are unpacked */
		blob_path(p, m->config.digest, path, sizeof(path));
		if (verify_file(path, m->config.digest) != DRV_OK) {
			unlink(path);
			rc = ferr(err, size,
			          "%s: config %s from the fetch helper failed verification",
			          s->name, m->config.digest);
		}
	}
	for (size_t i = 0; rc == DRV_OK && i < m->n_entries; i++)
		rc = ensure_blob(p, s, m->entries[i].digest, (uint64_t)m->entries[i].size, st, err,
		                 size);
	if (rc != DRV_OK)
		drv_oci_manifest_clear(m);
	return rc;
}

int puller_fetch(struct puller *p, const char *reference, const char *digest, int64_t deadline_ms,
                 struct puller_stats *stats, char *err, size_t size)
{
	struct puller_stats st = {0};
	struct drv_oci_manifest m = {0};
	char mdigest[DRV_DIGEST_STR];
	struct drv_oci_ref ref = {0};
	struct source s;
	int64_t t0 = drv_mono_ms();
	int rc;

	if (!drv_digest_valid(digest))
		return ferr(err, size, "image %s is not pinned by a sha256 digest", reference),
		       DRV_ENODIGEST;
	pthread_rwlock_rdlock(&p->gc_lock);
	rc = open_source(p, reference, deadline_ms, &s, &ref, err, size);
	if (rc == DRV_OK)
		rc = fetch_verified(p, reference, digest, &s, &m, mdigest, &st, err, size);
	if (rc == DRV_OK)
		drv_oci_manifest_clear(&m);
	pthread_rwlock_unlock(&p->gc_lock);
	drv_oci_client_free(s.client);
	drv_oci_ref_clear(&ref);
	st.fetch_ms = drv_mono_ms() - t0;
	if (stats != NULL)
		*stats = st;
	return rc;
}

/* --- releases --- */

int puller_release_dir(struct puller *p, const char *service, const char *digest, char **out)
{
	if (!drv_digest_valid(digest))
		return DRV_ENODIGEST;
	return asprintf(out, "%s/%s/%s", p->releases, service, digest + 7) < 0 ? DRV_ENOMEM
	                                                                       : DRV_OK;
}

int puller_has_release(struct puller *p, const char *service, const char *digest)
{
	char *dir, path[4200];
	struct stat st;
	int ok;

	if (puller_release_dir(p, service, digest, &dir) != DRV_OK)
		return 0;
	snprintf(path, sizeof(path), "%s/blobs", dir);
	ok = stat(path, &st) == 0;
	free(dir);
	return ok;
}

/* The layer at path (open as fd) onto root_fd, hashed in the same pass that
 * unpacks it (unpack.h), whether the fetch helper has just written it or it
 * was in the cache: the helper runs unprivileged and owns the cache, so
 * nothing it wrote is trusted. *bad: it hashes to another digest than dg;
 * root_fd was emptied. */
static int unpack_one(struct puller *p, int fd, const char *dg, int root_fd, bool *bad, char *uerr,
                      size_t usize)
{
	char got[DRV_DIGEST_STR] = "";
	struct unpack_stats us;
	int rc;

	if (p->fetch_exe != NULL) {
		/* Out of the agent's process, which so never hashes layers
		 * (sha256.h) nor loads libarchive (unpack_helper.h). */
		rc = unpack_helper_run(p->fetch_exe, fd, root_fd, dg, &us, uerr, usize);
		*bad = rc == DRV_EDECODE; /* only for "corrupt" (unpack_reply_parse) */
	} else {
		rc = unpack_layer_fd(fd, root_fd, dg, got, &us, uerr, usize);
		*bad = rc == DRV_EDECODE && got[0] != '\0';
	}
	return rc;
}

static int unpack_layers(struct puller *p, const struct drv_oci_manifest *m, int root_fd, char *err,
                         size_t size)
{
	char path[4096], uerr[512];
	int rc = DRV_OK;
	bool bad;

	for (size_t i = 0; rc == DRV_OK && i < m->n_entries; i++) {
		const char *dg = m->entries[i].digest;
		blob_path(p, dg, path, sizeof(path));
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		bad = fd < 0; /* a missing layer fails verification */
		if (fd >= 0) {
			rc = unpack_one(p, fd, dg, root_fd, &bad, uerr, sizeof(uerr));
			close(fd);
		}
		if (bad) {
			unlink(path);
			return ferr(err, size,
			            "layer %s failed verification and was dropped;"
			            " pull again",
			            dg),
			       DRV_EDECODE;
		}
		if (rc != DRV_OK)
			ferr(err, size, "layer %zu (%.19s): %s", i + 1, dg, uerr);
	}
	return rc;
}

static int write_release_meta(struct puller *p, const char *tmp, const char *digest,
                              const char *mdigest, const struct drv_oci_manifest *m)
{
	char path[4400], cfg[4096], *buf = NULL;
	size_t len, cap = 256 + (m->n_entries + 3) * 80, n = 0;
	char *list = malloc(cap);
	int rc;

	if (list == NULL)
		return DRV_ENOMEM;
	n += (size_t)snprintf(list + n, cap - n, "%s\n", digest);
	if (strcmp(mdigest, digest) != 0)
		n += (size_t)snprintf(list + n, cap - n, "%s\n", mdigest);
	n += (size_t)snprintf(list + n, cap - n, "%s\n", m->config.digest);
	for (size_t i = 0; i < m->n_entries; i++)
		n += (size_t)snprintf(list + n, cap - n, "%s\n", m->entries[i].digest);
	blob_path(p, m->config.digest, cfg, sizeof(cfg));
	rc = drv_read_file(cfg, DRV_OCI_MANIFEST_MAX, &buf, &len);
	if (rc == DRV_OK) {
		char got[DRV_DIGEST_STR];
		if (drv_sha256_buf(buf, len, got) != DRV_OK || strcmp(got, m->config.digest) != 0) {
			unlink(cfg);
			rc = DRV_EDECODE;
		}
	}
	if (rc == DRV_OK) {
		snprintf(path, sizeof(path), "%s/image-config.json", tmp);
		rc = drv_write_atomic(path, buf, len, 0640);
		free(buf);
	}
	if (rc == DRV_OK) {
		/* Written last: its presence marks a complete release. */
		snprintf(path, sizeof(path), "%s/blobs", tmp);
		rc = drv_write_atomic(path, list, n, 0640);
	}
	free(list);
	return rc;
}

/* Setuid/setgid bits come off every file of a new release; RELEASE/setid
 * lists them so that a service whose plan says keep_setid gets them back
 * when it starts (driver_exec). */
static int strip_setid(const char *tmp, int root_fd, char *err, size_t size)
{
	char path[4400], *list = NULL;
	size_t len = 0, n = 0;
	int rc = unpack_strip_setid(root_fd, &list, &len, &n);

	if (rc != DRV_OK)
		return ferr(err, size, "cannot remove setuid/setgid bits in %s", tmp), rc;
	/* Written even when empty: its absence marks a release unpacked by an
	 * older agent, which driver_exec strips when it starts. */
	snprintf(path, sizeof(path), "%s/setid", tmp);
	rc = drv_write_atomic(path, list != NULL ? list : "", len, 0600);
	if (n > 0)
		drv_info("puller", "removed setuid/setgid bits", "release=%s files=%zu", tmp, n);
	free(list);
	return rc;
}

static int build_release(struct puller *p, const char *service, const char *digest,
                         const char *mdigest, const struct drv_oci_manifest *m, const char *final,
                         char *err, size_t size)
{
	char tmp[4200], rootfs[4300];
	int root_fd, rc;

	/* The service directory may be searched (not listed) by services; the
	 * release being built is root's alone until it is complete. */
	snprintf(tmp, sizeof(tmp), "%s/%s", p->releases, service);
	rc = drv_mkdirs(tmp, 0711);
	snprintf(tmp, sizeof(tmp), "%s/%s/.tmp-%s-%d-%lld", p->releases, service, digest + 7,
	         (int)getpid(), (long long)drv_mono_ms());
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", tmp);
	if (rc == DRV_OK && (mkdir(tmp, 0700) < 0 || mkdir(rootfs, 0755) < 0))
		rc = DRV_ESYS;
	if (rc != DRV_OK) {
		fs_remove_path(tmp);
		return ferr(err, size, "cannot create %s: %s", rootfs, strerror(errno)), rc;
	}
	root_fd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = root_fd < 0 ? DRV_ESYS : unpack_layers(p, m, root_fd, err, size);
	if (rc == DRV_OK)
		rc = strip_setid(tmp, root_fd, err, size);
	if (root_fd >= 0)
		close(root_fd);
	if (rc == DRV_OK)
		rc = write_release_meta(p, tmp, digest, mdigest, m);
	if (rc == DRV_OK && rename(tmp, final) < 0) {
		if (errno == ENOTEMPTY || errno == EEXIST) /* someone else finished it */
			rc = DRV_OK;
		else
			rc = (ferr(err, size, "cannot rename %s: %s", tmp, strerror(errno)),
			      DRV_ESYS);
	}
	fs_remove_path(tmp);
	return rc;
}

int puller_stage(struct puller *p, const char *service, const char *reference, const char *digest,
                 int64_t deadline_ms, char **release_dir, struct puller_stats *stats, char *err,
                 size_t size)
{
	struct puller_stats st = {0};
	struct drv_oci_manifest m = {0};
	char mdigest[DRV_DIGEST_STR];
	struct drv_oci_ref ref = {0};
	struct source s = {0};
	char *dir = NULL;
	int64_t t0;
	int rc = puller_release_dir(p, service, digest, &dir);

	if (rc != DRV_OK)
		return ferr(err, size, "image %s is not pinned by a sha256 digest", reference), rc;
	if (puller_has_release(p, service, digest)) {
		*release_dir = dir;
		if (stats != NULL)
			*stats = st;
		return DRV_OK;
	}
	pthread_rwlock_rdlock(&p->gc_lock);
	t0 = drv_mono_ms();
	rc = open_source(p, reference, deadline_ms, &s, &ref, err, size);
	if (rc == DRV_OK)
		rc = fetch_verified(p, reference, digest, &s, &m, mdigest, &st, err, size);
	st.fetch_ms = drv_mono_ms() - t0;
	if (rc == DRV_OK) {
		t0 = drv_mono_ms();
		rc = build_release(p, service, digest, mdigest, &m, dir, err, size);
		st.unpack_ms = drv_mono_ms() - t0;
		drv_oci_manifest_clear(&m);
	}
	pthread_rwlock_unlock(&p->gc_lock);
	drv_oci_client_free(s.client);
	drv_oci_ref_clear(&ref);
	if (stats != NULL)
		*stats = st;
	if (rc != DRV_OK) {
		free(dir);
		return rc;
	}
	*release_dir = dir;
	return DRV_OK;
}

/* --- garbage collection --- */

struct strset {
	char **v;
	size_t n, cap;
};

static int strset_add(struct strset *s, const char *x)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		char **nv = realloc(s->v, nc * sizeof(*nv));
		if (nv == NULL)
			return DRV_ENOMEM;
		s->v = nv;
		s->cap = nc;
	}
	s->v[s->n] = strdup(x);
	if (s->v[s->n] == NULL)
		return DRV_ENOMEM;
	s->n++;
	return DRV_OK;
}

static bool strset_has(const struct strset *s, const char *x)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], x) == 0)
			return true;
	return false;
}

static void strset_free(struct strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static bool kept(char *const *services, char *const *digests, size_t n, const char *svc,
                 const char *hex)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(services[i], svc) == 0 && strlen(digests[i]) == 71 &&
		    strcmp(digests[i] + 7, hex) == 0)
			return true;
	return false;
}

/* Add the digests listed in DIR/blobs to used. */
static void collect_used(const char *dir, struct strset *used)
{
	char path[4600], *buf = NULL, *line, *save = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/blobs", dir);
	if (drv_read_file(path, 1u << 20, &buf, &len) != DRV_OK)
		return;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (drv_digest_valid(line) && !strset_has(used, line + 7))
			strset_add(used, line + 7);
	free(buf);
}

static void gc_service(struct puller *p, const char *svc, char *const *services,
                       char *const *digests, size_t n, struct strset *used)
{
	char dir[4096], path[4400];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", p->releases, svc);
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		int pid = 0;
		if (de->d_name[0] == '.' && strncmp(de->d_name, ".tmp-", 5) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (strncmp(de->d_name, ".tmp-", 5) == 0) {
			const char *dash = strchr(de->d_name + 5, '-');
			pid = dash ? atoi(dash + 1) : 0;
			if (pid == getpid() || (pid > 0 && kill(pid, 0) == 0))
				continue; /* someone is unpacking there */
			fs_remove_path(path);
		} else if (kept(services, digests, n, svc, de->d_name)) {
			collect_used(path, used);
		} else {
			drv_info("puller", "removing an old release", "service=%s digest=%.12s",
			         svc, de->d_name);
			fs_remove_path(path);
		}
	}
	closedir(d);
}

static bool hex64(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");

	return n == 64 && s[n] == '\0';
}

/* The fetch helper's user owns blobs/ and blobs/sha256: each is opened
 * without following a link, and only names that are digests are removed,
 * so a link planted there cannot turn GC loose on another directory. */
static void gc_blobs(struct puller *p, const struct strset *used)
{
	struct dirent *de;
	int top = open(p->cache, O_RDONLY | O_DIRECTORY | O_CLOEXEC), blobs = -1, fd = -1;
	DIR *d;

	if (top >= 0)
		blobs = openat(top, "blobs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (blobs >= 0)
		fd = openat(blobs, "sha256", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (top >= 0)
		close(top);
	if (blobs >= 0)
		close(blobs);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (!hex64(de->d_name) || strset_has(used, de->d_name))
			continue;
		drv_debug("puller", "removing an unused blob", "blob=%.12s", de->d_name);
		unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

int puller_gc(struct puller *p, char *const *services, char *const *digests, size_t n)
{
	struct strset used = {0};
	struct dirent *de;
	DIR *d;

	pthread_rwlock_wrlock(&p->gc_lock);
	d = opendir(p->releases);
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			gc_service(p, de->d_name, services, digests, n, &used);
	}
	if (d != NULL)
		closedir(d);
	gc_blobs(p, &used);
	pthread_rwlock_unlock(&p->gc_lock);
	strset_free(&used);
	return DRV_OK;
}
