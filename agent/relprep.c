/* relprep.c: a release made ready for its service (see relprep.h). */
#include "relprep.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "proc.h"
#include "puller.h"
#include "unpack.h"

#define FILE_MODE_DEFAULT 0640
#define SETID_LIST_MAX    (1u << 20)

int relprep_stage(struct puller *p, struct driver_instance *in, bool local_only, char **dir_out,
                  char *err, size_t size)
{
	if (local_only) {
		if (!puller_has_release(p, in->service, in->digest))
			return snprintf(err, size, "release %s of %s is no longer on this host",
			                in->digest, in->service),
			       DRV_ENOENT;
		return puller_release_dir(p, in->service, in->digest, dir_out);
	}
	return puller_stage(p, in->service, in->reference, in->digest, in->deadline_ms, dir_out,
	                    in->pull_stats, err, size);
}

/* The file at path (already written beneath root_fd) belongs to the service. */
static int give_file(int root_fd, const char *path, const struct privs *pv, char *err, size_t size)
{
	int fd;

	if (!pv->change_ids)
		return DRV_OK;
	while (*path == '/')
		path++;
	fd = fs_open_beneath(root_fd, path, O_PATH | O_NOFOLLOW, 0);
	if (fd < 0 || fchownat(fd, "", pv->uid, pv->gid, AT_EMPTY_PATH) < 0) {
		snprintf(err, size, "file /%s: cannot give it to %s: %s", path, pv->user,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return DRV_ESYS;
	}
	close(fd);
	return DRV_OK;
}

static int write_files(const Drover__ServiceSpec *sp, const char *root, const struct privs *pv,
                       char *err, size_t size)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = DRV_OK;

	if (fd < 0)
		return snprintf(err, size, "release root %s: %s", root, strerror(errno)),
		       DRV_ENOENT;
	for (size_t i = 0; rc == DRV_OK && i < sp->n_files; i++) {
		const Drover__File *f = sp->files[i];
		rc = unpack_write_file(fd, f->path, f->content.data, f->content.len,
		                       f->mode ? f->mode : FILE_MODE_DEFAULT, err, size);
		if (rc == DRV_OK)
			rc = give_file(fd, f->path, pv, err, size);
	}
	close(fd);
	return rc;
}

/* RELEASE/setid lists the files whose setuid/setgid bits the puller removed.
 * A release without it was unpacked by an older agent: strip it now. */
static int setid_list(const char *release_dir, int rfd, char **list, size_t *len)
{
	char path[4200];
	size_t n = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/setid", release_dir);
	rc = drv_read_file(path, SETID_LIST_MAX, list, len);
	if (rc != DRV_ENOENT)
		return rc;
	rc = unpack_strip_setid(rfd, list, len, &n);
	if (rc == DRV_OK)
		rc = drv_write_atomic(path, *list != NULL ? *list : "", *len, 0600);
	if (rc == DRV_OK && n > 0)
		drv_warn("release",
		         "removed setuid/setgid bits from a release an older agent unpacked",
		         "release=%s files=%zu", release_dir, n);
	return rc;
}

int relprep_secure(const char *release_dir, const Drover__ServiceSpec *sp, const struct privs *pv,
                   char *err, size_t size)
{
	char root[4200], *list = NULL;
	size_t len = 0;
	int fd = open(release_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rfd;
	int rc = DRV_OK;

	if (fd < 0)
		return snprintf(err, size, "release %s: %s", release_dir, strerror(errno)),
		       DRV_ENOENT;
	if ((geteuid() == 0 && fchown(fd, 0, pv->change_ids ? pv->gid : 0) < 0) ||
	    fchmod(fd, 0750) < 0)
		rc = (snprintf(err, size, "release %s: cannot set its owner and mode: %s",
		               release_dir, strerror(errno)),
		      DRV_ESYS);
	close(fd);
	if (rc != DRV_OK)
		return rc;
	snprintf(root, sizeof(root), "%s/rootfs", release_dir);
	rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0 || setid_list(release_dir, rfd, &list, &len) != DRV_OK ||
	    unpack_apply_setid(rfd, list, len, sp->keep_setid) != DRV_OK)
		rc = (snprintf(err, size, "release %s: cannot %s setuid/setgid bits", release_dir,
		               sp->keep_setid ? "restore" : "remove"),
		      DRV_ESYS);
	if (rfd >= 0)
		close(rfd);
	free(list);
	if (rc == DRV_OK)
		rc = write_files(sp, root, pv, err, size);
	return rc;
}

void relprep_image_load(const char *release_dir, struct relprep_image *ic)
{
	char path[4200];
	json_t *c, *ep, *cmd;

	memset(ic, 0, sizeof(*ic));
	snprintf(path, sizeof(path), "%s/image-config.json", release_dir);
	ic->root = json_load_file(path, 0, NULL);
	c = json_object_get(ic->root, "config");
	ep = json_object_get(c, "Entrypoint");
	cmd = json_object_get(c, "Cmd");
	ic->argv = json_array();
	if (json_is_array(ep))
		json_array_extend(ic->argv, ep);
	if (json_is_array(cmd))
		json_array_extend(ic->argv, cmd);
	ic->env = json_object_get(c, "Env");
	ic->workdir = json_string_value(json_object_get(c, "WorkingDir"));
}

void relprep_image_free(struct relprep_image *ic)
{
	json_decref(ic->argv);
	json_decref(ic->root);
	memset(ic, 0, sizeof(*ic));
}

bool relprep_has_dotdot(const char *s)
{
	for (const char *p = s; (p = strstr(p, "..")) != NULL; p += 2) {
		if ((p == s || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	}
	return false;
}

int relprep_program(const char *root, const char *cmd, int flags, int *fd_out, char *real,
                    size_t real_size, size_t *root_len, char *err, size_t size)
{
	char real_root[4096], link[64];
	struct stat st;
	size_t rl;
	ssize_t n;
	int rfd, fd;

	if (cmd[0] != '/')
		return snprintf(err, size, "command '%s' must be an absolute path inside the image",
		                cmd),
		       DRV_EINVAL;
	if (relprep_has_dotdot(cmd))
		return snprintf(err, size, "command '%s': '..' is not allowed in the path", cmd),
		       DRV_EINVAL;
	if (realpath(root, real_root) == NULL ||
	    (rfd = open(real_root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return snprintf(err, size, "release root %.300s: %s", root, strerror(errno)),
		       DRV_ENOENT;
	fd = fs_open_in_root(rfd, cmd + 1, flags);
	close(rfd);
	if (fd < 0)
		return snprintf(err, size, "command %s: %s in the image%s", cmd, strerror(errno),
		                errno == ENOENT ? " (symlinks resolve inside the release)" : ""),
		       DRV_ENOENT;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, real, real_size - 1);
	real[n > 0 ? n : 0] = '\0';
	rl = strlen(real_root);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0 || n <= 0 ||
	    strncmp(real, real_root, rl) != 0 || real[rl] != '/') {
		close(fd);
		return snprintf(err, size, "command %s is not an executable file inside the image",
		                cmd),
		       DRV_EPERM;
	}
	*fd_out = fd;
	*root_len = rl;
	return DRV_OK;
}

int relprep_env(const Drover__ServiceSpec *sp, const char *service, const char *slot,
                const struct relprep_image *ic, const char *root, relprep_env_fn fn, void *arg)
{
	char port[16];
	int rc = fn("PATH", PROC_DEFAULT_PATH, arg);
	size_t i;
	json_t *v;

	if (rc == DRV_OK)
		rc = fn("HOME", "/", arg);
	json_array_foreach(ic->env, i, v)
	{
		const char *kv = json_string_value(v), *eq = kv ? strchr(kv, '=') : NULL;
		char key[256];
		if (rc != DRV_OK || eq == NULL || eq == kv || (size_t)(eq - kv) >= sizeof(key))
			continue;
		snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
		rc = fn(key, eq + 1, arg);
	}
	for (i = 0; rc == DRV_OK && i < sp->n_env; i++)
		rc = fn(sp->env[i]->key, sp->env[i]->value, arg);
	snprintf(port, sizeof(port), "%u", sp->port);
	if (rc == DRV_OK)
		rc = fn("DROVER_SERVICE", service, arg);
	if (rc == DRV_OK)
		rc = fn("DROVER_VERSION", sp->version ? sp->version : "", arg);
	if (rc == DRV_OK)
		rc = fn("DROVER_SLOT", slot ? slot : "", arg);
	if (rc == DRV_OK)
		rc = fn("DROVER_PORT", port, arg);
	if (rc == DRV_OK && sp->isolation != DROVER__ISOLATION__ISOLATION_CHROOT)
		rc = fn("DROVER_ROOT", root, arg);
	return rc;
}
