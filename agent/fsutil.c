/* fsutil.c: removal and root-confined resolution. */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "err.h"

static int remove_children(int fd)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	int rc = DRV_OK;

	if (d == NULL) {
		close(fd);
		return DRV_ESYS;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fs_remove_at(dirfd(d), de->d_name) != DRV_OK)
			rc = DRV_ESYS;
	}
	closedir(d);
	return rc;
}

int fs_remove_at(int dirfd, const char *name)
{
	int fd;

	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return DRV_OK;
	if (errno != EISDIR && errno != EPERM)
		return DRV_ESYS;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? DRV_OK : DRV_ESYS;
	/* Make it writable so its entries can go (a layer may ship 0555 dirs). */
	fchmod(fd, 0700);
	if (remove_children(fd) != DRV_OK)
		return DRV_ESYS;
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return DRV_ESYS;
	return DRV_OK;
}

int fs_remove_path(const char *path)
{
	return fs_remove_at(AT_FDCWD, path);
}

int fs_open_beneath(int root_fd, const char *rel, int flags, mode_t mode)
{
	struct open_how how = {
	        .flags = (unsigned long long)flags | O_CLOEXEC,
	        .mode = (flags & O_CREAT) ? mode : 0,
	        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};

	return (int)syscall(SYS_openat2, root_fd, rel[0] ? rel : ".", &how, sizeof(how));
}

int fs_open_in_root(int root_fd, const char *rel, int flags)
{
	struct open_how how = {
	        .flags = (unsigned long long)flags | O_CLOEXEC,
	        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};

	return (int)syscall(SYS_openat2, root_fd, rel[0] ? rel : ".", &how, sizeof(how));
}

int fs_mkdirs_beneath(int root_fd, const char *rel, mode_t mode)
{
	int fd = fs_open_beneath(root_fd, rel, O_PATH | O_DIRECTORY, 0);
	char *copy, *slash;
	int parent;

	if (fd >= 0 || errno != ENOENT)
		return fd;
	copy = strdup(rel);
	if (copy == NULL)
		return -1;
	slash = strrchr(copy, '/');
	if (slash != NULL) {
		*slash = '\0';
		parent = fs_mkdirs_beneath(root_fd, copy, mode);
	} else {
		parent = fs_open_beneath(root_fd, "", O_PATH | O_DIRECTORY, 0);
	}
	if (parent >= 0) {
		const char *base = slash ? slash + 1 : copy;
		if (mkdirat(parent, base, mode) == 0 || errno == EEXIST)
			fd = fs_open_beneath(root_fd, rel, O_PATH | O_DIRECTORY, 0);
		int e = errno;
		close(parent);
		errno = e;
	}
	free(copy);
	return fd;
}

static unsigned long long tree_size_at(int at, const char *name)
{
	struct stat st;
	unsigned long long total;
	struct dirent *de;
	DIR *d;
	int fd;

	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	total = (unsigned long long)st.st_blocks * 512;
	if (!S_ISDIR(st.st_mode))
		return total;
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return total;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			total += tree_size_at(dirfd(d), de->d_name);
	}
	closedir(d);
	return total;
}

unsigned long long fs_tree_size(const char *path)
{
	return tree_size_at(AT_FDCWD, path);
}
