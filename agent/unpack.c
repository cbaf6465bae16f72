/* unpack.c: OCI layer application with libarchive and openat2. */
#include "unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "sha256.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

/* --- pure path logic --- */

int unpack_clean_path(const char *in, char *out, size_t size)
{
	size_t o = 0;
	const char *p = in;

	if (in == NULL || strlen(in) >= UNPACK_PATH_MAX || size < 2)
		return DRV_EINVAL;
	if (*p == '/')
		return DRV_EPERM;
	while (*p != '\0') {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return DRV_EPERM;
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (o + n + 2 > size)
				return DRV_EINVAL;
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	out[o] = '\0';
	return DRV_OK;
}

int unpack_whiteout(const char *clean, char *target, size_t size)
{
	const char *slash = strrchr(clean, '/');
	const char *base = slash ? slash + 1 : clean;
	size_t dirlen = slash ? (size_t)(slash - clean) : 0;

	if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)) != 0)
		return 0;
	if (dirlen + 1 > size)
		return 0;
	memcpy(target, clean, dirlen);
	target[dirlen] = '\0';
	if (strcmp(base, WH_OPAQUE) == 0)
		return 2;
	base += strlen(WH_PREFIX);
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return 0;
	snprintf(target + dirlen, size - dirlen, "%s%s", dirlen ? "/" : "", base);
	return 1;
}

/* --- the set of paths this layer created (whiteouts spare them) --- */

struct pathset {
	char **slots;
	size_t cap, n;
};

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static bool set_has(const struct pathset *s, const char *p)
{
	if (s->cap == 0)
		return false;
	for (size_t i = fnv(p) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (s->slots[i] == NULL)
			return false;
		if (strcmp(s->slots[i], p) == 0)
			return true;
	}
}

static int set_put_raw(struct pathset *s, char *p)
{
	size_t i = fnv(p) & (s->cap - 1);
	while (s->slots[i] != NULL)
		i = (i + 1) & (s->cap - 1);
	s->slots[i] = p;
	s->n++;
	return DRV_OK;
}

static int set_add(struct pathset *s, const char *p)
{
	char *copy;

	if (set_has(s, p))
		return DRV_OK;
	if ((s->n + 1) * 2 > s->cap) {
		struct pathset ns = {.cap = s->cap ? s->cap * 2 : 256};
		ns.slots = calloc(ns.cap, sizeof(char *));
		if (ns.slots == NULL)
			return DRV_ENOMEM;
		for (size_t i = 0; i < s->cap; i++)
			if (s->slots[i] != NULL)
				set_put_raw(&ns, s->slots[i]);
		free(s->slots);
		*s = ns;
	}
	copy = strdup(p);
	if (copy == NULL)
		return DRV_ENOMEM;
	return set_put_raw(s, copy);
}

static void set_free(struct pathset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slots[i]);
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

/* --- applying entries --- */

struct ctx {
	int root;
	struct archive *a;
	struct pathset created;
	struct unpack_stats st;
	char *err;
	size_t err_size;
	bool as_root;
};

__attribute__((format(printf, 3, 4))) static int fail(struct ctx *c, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, c->err_size, fmt, ap);
	va_end(ap);
	return rc;
}

/* Split a clean path into its parent (opened beneath root) and base name. */
static int open_parent(struct ctx *c, const char *path, const char **base, bool create)
{
	char dir[UNPACK_PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;

	*base = slash ? slash + 1 : path;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 0, path);
	if (create)
		fd = fs_mkdirs_beneath(c->root, dir, 0755);
	else
		fd = fs_open_beneath(c->root, dir, O_PATH | O_DIRECTORY, 0);
	if (fd < 0 && errno == EXDEV)
		fail(c, DRV_EPERM,
		     "layer entry '%s': its directory '%s' resolves outside the root (a '..' or an"
		     " absolute or escaping symlink): refused",
		     path, dir);
	else if (fd < 0 && !(errno == ENOENT && !create))
		fail(c, DRV_ESYS, "layer entry '%s': cannot open directory '%s': %s", path, dir,
		     strerror(errno));
	return fd;
}

static void set_meta(struct ctx *c, int dirfd, const char *base, struct archive_entry *e,
                     bool is_link)
{
	struct timespec ts[2] = {{.tv_sec = archive_entry_mtime(e)},
	                         {.tv_sec = archive_entry_mtime(e)}};

	if (c->as_root && fchownat(dirfd, base, (uid_t)archive_entry_uid(e),
	                           (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
		drv_debug("unpack", "chown failed", "name=%s errno=%d", base, errno);
	if (!is_link && fchmodat(dirfd, base, archive_entry_perm(e) & 07777, 0) < 0)
		drv_debug("unpack", "chmod failed", "name=%s errno=%d", base, errno);
	utimensat(dirfd, base, ts, AT_SYMLINK_NOFOLLOW);
}

static int write_data(struct ctx *c, int fd, const char *path)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;

	while ((r = archive_read_data_block(c->a, &buf, &size, &off)) == ARCHIVE_OK) {
		const char *p = buf;
		while (size > 0) {
			ssize_t w = pwrite(fd, p, size, off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return fail(c, DRV_EIO, "layer entry '%s': write failed: %s", path,
				            strerror(errno));
			}
			p += w;
			off += w;
			size -= (size_t)w;
			c->st.bytes += (uint64_t)w;
		}
	}
	if (r != ARCHIVE_EOF)
		return fail(c, DRV_EDECODE, "layer entry '%s': %s", path,
		            archive_error_string(c->a) ? archive_error_string(c->a) : "bad data");
	return DRV_OK;
}

static int make_file(struct ctx *c, int dirfd, const char *base, const char *path,
                     struct archive_entry *e)
{
	int fd = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int rc;

	if (fd < 0)
		return fail(c, DRV_ESYS, "layer entry '%s': cannot create: %s", path,
		            strerror(errno));
	rc = write_data(c, fd, path);
	if (rc == DRV_OK && ftruncate(fd, archive_entry_size(e)) < 0)
		rc = fail(c, DRV_EIO, "layer entry '%s': truncate failed", path);
	close(fd);
	return rc;
}

static int make_hardlink(struct ctx *c, int dirfd, const char *base, const char *path,
                         const char *target)
{
	char clean[UNPACK_PATH_MAX];
	const char *tbase;
	int tfd, rc = unpack_clean_path(target, clean, sizeof(clean));

	if (rc != DRV_OK || clean[0] == '\0')
		return fail(c, DRV_EPERM,
		            "layer entry '%s': hard link target '%s' is outside the"
		            " root: refused",
		            path, target);
	tfd = open_parent(c, clean, &tbase, false);
	if (tfd < 0)
		return errno == ENOENT ? fail(c, DRV_EINVAL,
		                              "layer entry '%s': hard link target"
		                              " '%s' does not exist",
		                              path, target)
		                       : DRV_EPERM;
	if (linkat(tfd, tbase, dirfd, base, 0) < 0)
		rc = fail(c, DRV_ESYS, "layer entry '%s': link to '%s' failed: %s", path, target,
		          strerror(errno));
	close(tfd);
	return rc;
}

/* Replace whatever is at base unless both are directories. */
static int clear_slot(int dirfd, const char *base, bool want_dir)
{
	struct stat st;

	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return DRV_OK;
	if (want_dir && S_ISDIR(st.st_mode))
		return DRV_OK;
	return fs_remove_at(dirfd, base);
}

static int make_node(struct ctx *c, int dirfd, const char *base, const char *path,
                     struct archive_entry *e)
{
	mode_t type = archive_entry_filetype(e);
	const char *hl = archive_entry_hardlink(e);

	if (hl != NULL)
		return make_hardlink(c, dirfd, base, path, hl);
	switch (type) {
	case AE_IFREG: return make_file(c, dirfd, base, path, e);
	case AE_IFDIR:
		if (mkdirat(dirfd, base, 0700) < 0 && errno != EEXIST)
			return fail(c, DRV_ESYS, "layer entry '%s': mkdir: %s", path,
			            strerror(errno));
		return DRV_OK;
	case AE_IFLNK:
		if (symlinkat(archive_entry_symlink(e) ? archive_entry_symlink(e) : "", dirfd,
		              base) < 0)
			return fail(c, DRV_ESYS, "layer entry '%s': symlink: %s", path,
			            strerror(errno));
		return DRV_OK;
	case AE_IFIFO:
		if (mknodat(dirfd, base, S_IFIFO | 0600, 0) < 0)
			return fail(c, DRV_ESYS, "layer entry '%s': mkfifo: %s", path,
			            strerror(errno));
		return DRV_OK;
	default:
		drv_debug("unpack", "skipping device or socket entry", "path=%s", path);
		return 1; /* skipped */
	}
}

static int apply_entry(struct ctx *c, struct archive_entry *e, const char *path)
{
	bool is_dir = archive_entry_filetype(e) == AE_IFDIR && !archive_entry_hardlink(e);
	const char *base;
	int dirfd, rc;

	dirfd = open_parent(c, path, &base, true);
	if (dirfd < 0)
		return c->err[0] ? (errno == EXDEV ? DRV_EPERM : DRV_ESYS) : DRV_ESYS;
	rc = clear_slot(dirfd, base, is_dir);
	if (rc != DRV_OK)
		rc = fail(c, DRV_ESYS, "layer entry '%s': cannot replace the existing entry", path);
	if (rc == DRV_OK)
		rc = make_node(c, dirfd, base, path, e);
	if (rc == DRV_OK && !archive_entry_hardlink(e))
		set_meta(c, dirfd, base, e, archive_entry_filetype(e) == AE_IFLNK);
	if (rc == 1)
		rc = DRV_OK;
	close(dirfd);
	if (rc == DRV_OK)
		rc = set_add(&c->created, path);
	return rc;
}

static int whiteout(struct ctx *c, const char *path, const char *target, int kind)
{
	const char *base;
	int pfd, rc = DRV_OK;

	c->st.whiteouts++;
	if (kind == 1) {
		if (set_has(&c->created, target))
			return DRV_OK;
		pfd = open_parent(c, target, &base, false);
		if (pfd < 0)
			return errno == ENOENT ? DRV_OK : (errno == EXDEV ? DRV_EPERM : DRV_ESYS);
		if (fs_remove_at(pfd, base) != DRV_OK)
			rc = fail(c, DRV_ESYS, "whiteout '%s': cannot remove '%s'", path, target);
		close(pfd);
		return rc;
	}
	/* Opaque: drop what lower layers put in target, keep this layer's entries. */
	int fd = fs_open_beneath(c->root, target, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return errno == ENOENT ? DRV_OK : (errno == EXDEV ? DRV_EPERM : DRV_ESYS);
	DIR *d = fdopendir(fd);
	struct dirent *de;
	if (d == NULL) {
		close(fd);
		return DRV_ESYS;
	}
	while (rc == DRV_OK && (de = readdir(d)) != NULL) {
		char child[UNPACK_PATH_MAX + 300];
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(child, sizeof(child), "%s%s%s", target, target[0] ? "/" : "", de->d_name);
		if (!set_has(&c->created, child) && fs_remove_at(dirfd(d), de->d_name) != DRV_OK)
			rc = fail(c, DRV_ESYS, "opaque whiteout '%s': cannot remove '%s'", path,
			          child);
	}
	closedir(d);
	return rc;
}

static int next_entry(struct ctx *c, struct archive_entry *e)
{
	char path[UNPACK_PATH_MAX], target[UNPACK_PATH_MAX];
	const char *name = archive_entry_pathname(e);
	int rc, kind;

	if (++c->st.entries > UNPACK_MAX_ENTRIES)
		return fail(c, DRV_ETOOBIG, "layer has more than %d entries", UNPACK_MAX_ENTRIES);
	rc = unpack_clean_path(name, path, sizeof(path));
	if (rc == DRV_EPERM)
		return fail(c, rc,
		            "layer entry '%.200s' escapes the root (absolute or '..'):"
		            " refused",
		            name ? name : "");
	if (rc != DRV_OK)
		return fail(c, rc, "layer entry '%.200s': empty or too long a name",
		            name ? name : "");
	if (path[0] == '\0')
		return DRV_OK; /* "./" itself */
	kind = unpack_whiteout(path, target, sizeof(target));
	if (kind != 0)
		return whiteout(c, path, target, kind);
	return apply_entry(c, e, path);
}

static int run(struct ctx *c)
{
	struct archive_entry *e;
	int r, rc = DRV_OK;

	while (rc == DRV_OK && (r = archive_read_next_header(c->a, &e)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN)
			return fail(c, DRV_EDECODE, "layer is not a valid tar stream: %s",
			            archive_error_string(c->a) ? archive_error_string(c->a)
			                                       : "unknown error");
		rc = next_entry(c, e);
	}
	return rc;
}

static struct archive *new_reader(void)
{
	struct archive *a = archive_read_new();

	if (a == NULL)
		return NULL;
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	return a;
}

static int finish(struct ctx *c, int rc, struct unpack_stats *stats)
{
	archive_read_free(c->a);
	set_free(&c->created);
	if (rc == DRV_OK && stats != NULL)
		*stats = c->st;
	return rc;
}

/* --- the layer's bytes, hashed as libarchive reads them --- */

#define FEED_BUF (256 * 1024)

/* libarchive reads the layer through feed_read only (no skip callback, so
 * every byte it sees, skipped entries too, passes through here): what is
 * hashed is exactly what is unpacked, in one pass. */
struct feed {
	int fd;
	char *buf;
	struct drv_sha256 *h; /* NULL: no digest to check */
	int hash_rc;
	int read_errno; /* of a failed read, said instead of libarchive's error */
};

static la_ssize_t feed_read(struct archive *a, void *data, const void **out)
{
	struct feed *f = data;
	ssize_t r;

	do
		r = read(f->fd, f->buf, FEED_BUF);
	while (r < 0 && errno == EINTR);
	(void)a;
	if (r < 0) {
		f->read_errno = errno;
		return ARCHIVE_FATAL;
	}
	if (r > 0 && f->h != NULL && f->hash_rc == DRV_OK)
		f->hash_rc = drv_sha256_update(f->h, f->buf, (size_t)r);
	*out = f->buf;
	return r;
}

/* What libarchive left unread (after the archive's end, or after an
 * error) goes into the hash too: the digest covers the whole file. */
static int feed_drain(struct feed *f)
{
	ssize_t r;

	while (f->hash_rc == DRV_OK && (r = read(f->fd, f->buf, FEED_BUF)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		f->hash_rc = r < 0 ? DRV_ESYS : drv_sha256_update(f->h, f->buf, (size_t)r);
	}
	return f->hash_rc;
}

/* Everything in root_fd goes: a root a corrupt layer went into is never used. */
static void empty_root(int root_fd)
{
	int fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			fs_remove_at(dirfd(d), de->d_name);
	closedir(d);
}

int unpack_layer_fd(int layer_fd, int root_fd, const char *digest, char got[DRV_DIGEST_STR],
                    struct unpack_stats *stats, char *err, size_t err_size)
{
	struct ctx c = {
	        .root = root_fd, .err = err, .err_size = err_size, .as_root = geteuid() == 0};
	struct feed f = {.fd = layer_fd};
	int rc;

	err[0] = '\0';
	if (got != NULL)
		got[0] = '\0';
	f.buf = malloc(FEED_BUF);
	if (f.buf == NULL)
		return DRV_ENOMEM;
	if (digest != NULL && (rc = drv_sha256_new(&f.h)) != DRV_OK) {
		free(f.buf);
		return fail(&c, rc, "cannot hash the layer: %s", drv_strerror(rc));
	}
	c.a = new_reader();
	if (c.a == NULL)
		rc = DRV_ENOMEM;
	else if (archive_read_open(c.a, &f, NULL, feed_read, NULL) != ARCHIVE_OK)
		rc = fail(&c, DRV_EDECODE, "layer: %s",
		          archive_error_string(c.a) ? archive_error_string(c.a) : "?");
	else
		rc = run(&c);
	if (rc != DRV_OK && f.read_errno != 0)
		rc = fail(&c, DRV_ESYS, "cannot read the layer: %s", strerror(f.read_errno));
	rc = finish(&c, rc, stats);
	if (digest != NULL) {
		char dg[DRV_DIGEST_STR];
		int hrc = feed_drain(&f);

		if (hrc == DRV_OK)
			hrc = drv_sha256_final(f.h, dg);
		if (hrc != DRV_OK) {
			rc = fail(&c, hrc, "cannot hash the layer: %s",
			          hrc == DRV_ESYS ? strerror(errno) : drv_strerror(hrc));
			empty_root(root_fd); /* unverified: nothing of it may stay */
		} else if (strcmp(dg, digest) != 0) {
			empty_root(root_fd);
			if (got != NULL)
				snprintf(got, DRV_DIGEST_STR, "%s", dg);
			rc = fail(&c, DRV_EDECODE, "the layer hashes to %s, not %s", dg, digest);
		}
		drv_sha256_free(f.h);
	}
	free(f.buf);
	return rc;
}

int unpack_layer_mem(const void *buf, size_t len, int root_fd, struct unpack_stats *stats,
                     char *err, size_t err_size)
{
	struct ctx c = {
	        .root = root_fd, .err = err, .err_size = err_size, .as_root = geteuid() == 0};

	err[0] = '\0';
	c.a = new_reader();
	if (c.a == NULL)
		return DRV_ENOMEM;
	if (archive_read_open_memory(c.a, buf, len) != ARCHIVE_OK)
		return finish(&c,
		              fail(&c, DRV_EDECODE, "layer: %s",
		                   archive_error_string(c.a) ? archive_error_string(c.a) : "?"),
		              stats);
	return finish(&c, run(&c), stats);
}

int unpack_write_file(int root_fd, const char *path, const void *data, size_t len, mode_t mode,
                      char *err, size_t err_size)
{
	struct ctx c = {.root = root_fd, .err = err, .err_size = err_size};
	char clean[UNPACK_PATH_MAX], tmp[300];
	const char *base, *p = data;
	int dirfd, fd, rc;

	err[0] = '\0';
	while (*path == '/')
		path++;
	rc = unpack_clean_path(path, clean, sizeof(clean));
	if (rc != DRV_OK || clean[0] == '\0')
		return fail(&c, DRV_EPERM, "file '%s': not a path inside the release", path);
	dirfd = open_parent(&c, clean, &base, true);
	if (dirfd < 0)
		return errno == EXDEV ? DRV_EPERM : DRV_ESYS;
	snprintf(tmp, sizeof(tmp), ".%.200s.drover-tmp", base);
	unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
	rc = fd < 0 ? DRV_ESYS : DRV_OK;
	while (rc == DRV_OK && len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			rc = DRV_EIO;
		else
			p += w, len -= (size_t)w;
	}
	if (fd >= 0) {
		if (rc == DRV_OK && (fchmod(fd, mode & 07777) < 0 || fsync(fd) < 0))
			rc = DRV_EIO;
		close(fd);
	}
	if (rc == DRV_OK && renameat(dirfd, tmp, dirfd, base) < 0)
		rc = DRV_ESYS;
	if (rc != DRV_OK) {
		unlinkat(dirfd, tmp, 0);
		fail(&c, rc, "file '%s': cannot write: %s", clean, strerror(errno));
	}
	close(dirfd);
	return rc;
}

/* --- setuid/setgid bits --- */

#define SETID_DEPTH_MAX 256

struct setid_walk {
	char *buf;
	size_t len, cap;
	size_t n;
	bool oom;
};

static void setid_note(struct setid_walk *w, mode_t mode, const char *rel)
{
	size_t need = strlen(rel) + 16;

	if (strchr(rel, '\n') != NULL)
		return; /* cannot be listed: stays stripped */
	if (w->len + need > w->cap) {
		size_t nc = (w->cap ? w->cap * 2 : 1024) + need;
		char *nb = realloc(w->buf, nc);
		if (nb == NULL) {
			w->oom = true;
			return;
		}
		w->buf = nb;
		w->cap = nc;
	}
	w->len += (size_t)snprintf(w->buf + w->len, w->cap - w->len, "%04o %s\n",
	                           (unsigned)(mode & 07777), rel);
	w->n++;
}

static int setid_dir(int dfd, const char *rel, struct setid_walk *w, int depth)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int rc = DRV_OK;

	if (d == NULL) {
		close(dfd);
		return DRV_ESYS;
	}
	while (rc == DRV_OK && (de = readdir(d)) != NULL) {
		char child[UNPACK_PATH_MAX];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(child, sizeof(child), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
		    (int)sizeof(child))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode) && depth < SETID_DEPTH_MAX) {
			int cfd = openat(dirfd(d), de->d_name,
			                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd >= 0)
				rc = setid_dir(cfd, child, w, depth + 1);
		} else if (S_ISREG(st.st_mode) && (st.st_mode & (S_ISUID | S_ISGID)) != 0) {
			if (fchmodat(dirfd(d), de->d_name, st.st_mode & 01777, 0) < 0)
				rc = DRV_ESYS;
			else
				setid_note(w, st.st_mode, child);
		}
	}
	closedir(d);
	return w->oom ? DRV_ENOMEM : rc;
}

int unpack_strip_setid(int root_fd, char **list, size_t *len, size_t *count)
{
	struct setid_walk w = {0};
	int fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return DRV_ESYS;
	rc = setid_dir(fd, "", &w, 0);
	if (rc != DRV_OK) {
		free(w.buf);
		return rc;
	}
	*list = w.buf;
	*len = w.len;
	*count = w.n;
	return DRV_OK;
}

int unpack_apply_setid(int root_fd, const char *list, size_t len, bool keep)
{
	const char *p = list, *end = list + len;
	int rc = DRV_OK;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char line[UNPACK_PATH_MAX + 16], *path;
		unsigned long mode;
		struct stat st;
		int fd;

		if (nl == NULL)
			break;
		snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
		p = nl + 1;
		mode = strtoul(line, &path, 8);
		if (*path != ' ' || path[1] == '\0')
			continue;
		path++;
		fd = fs_open_beneath(root_fd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
		if (fd < 0)
			continue; /* gone (a file of the plan replaced it?) */
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    fchmod(fd, keep ? (mode_t)(mode & 07777) : (mode_t)(mode & 01777)) < 0)
			rc = DRV_ESYS;
		close(fd);
	}
	return rc;
}
