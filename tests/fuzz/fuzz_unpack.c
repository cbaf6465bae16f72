/* fuzz_unpack.c: the layer unpacker (agent/unpack.c) on arbitrary tar,
 * tar+gzip and tar+zstd bytes, into a scratch root under a fence directory:
 * after each input nothing may exist in the fence except the root. Then the
 * release's setuid/setgid pass: strip every bit, list them, put them back
 * and strip them again; no file may keep a bit after the last pass. The
 * same bytes also go through unpack_layer_fd with a digest (hashed while
 * unpacked, from a memfd): with their own digest they are never "corrupt";
 * with another, they are, and nothing is left in the root. */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fsutil.h"
#include "sha256.h"
#include "unpack.h"

static char fence[64];

static void check_no_setid(int dfd, int depth)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	struct stat st;

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode) && (st.st_mode & (S_ISUID | S_ISGID))) {
			fprintf(stderr, "setuid/setgid bit left on %s\n", de->d_name);
			abort();
		}
		if (S_ISDIR(st.st_mode) && depth < 64) {
			int c = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			if (c >= 0)
				check_no_setid(c, depth + 1);
		}
	}
	if (d != NULL)
		closedir(d);
	else
		close(dfd);
}

static void setid_pass(int fd)
{
	char *list = NULL;
	size_t len = 0, n = 0;

	if (unpack_strip_setid(fd, &list, &len, &n) == 0 && list != NULL) {
		unpack_apply_setid(fd, list, len, true);
		unpack_apply_setid(fd, list, len, false);
	}
	free(list);
	check_no_setid(openat(fd, ".", O_RDONLY | O_DIRECTORY), 0);
}

static void check_fence(void)
{
	DIR *d = opendir(fence);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, "root")) {
			fprintf(stderr, "unpack escaped the root: %s/%s\n", fence, de->d_name);
			abort();
		}
	}
	if (d != NULL)
		closedir(d);
}

static bool root_empty(int fd)
{
	DIR *d = fdopendir(openat(fd, ".", O_RDONLY | O_DIRECTORY));
	struct dirent *de;
	bool empty = true;

	while (d != NULL && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	if (d != NULL)
		closedir(d);
	return empty;
}

/* The layer from a file, hashed as it is unpacked: with its own digest
 * (right) or another. */
static void hashed_pass(const uint8_t *data, size_t size, int root_fd, bool right)
{
	static int mfd = -1;
	char dg[DRV_DIGEST_STR], got[DRV_DIGEST_STR], err[512];
	int rc;

	if (mfd < 0 && (mfd = memfd_create("layer", 0)) < 0)
		abort();
	if (ftruncate(mfd, 0) < 0 || (size > 0 && pwrite(mfd, data, size, 0) != (ssize_t)size) ||
	    lseek(mfd, 0, SEEK_SET) != 0 || drv_sha256_buf(data, size, dg) != 0)
		abort();
	if (!right)
		dg[7] = dg[7] == '0' ? '1' : '0';
	rc = unpack_layer_fd(mfd, root_fd, dg, got, NULL, err, sizeof(err));
	if (right && got[0] != '\0') {
		fprintf(stderr, "a layer with its own digest said corrupt: %s\n", err);
		abort();
	}
	if (!right && (rc == 0 || got[0] == '\0' || !root_empty(root_fd))) {
		fprintf(stderr, "a layer with another digest: rc %d, got '%s', root %s\n", rc, got,
		        root_empty(root_fd) ? "empty" : "not empty");
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char root[128], err[512];
	int fd;

	if (fence[0] == '\0') {
		snprintf(fence, sizeof(fence), "/tmp/drv-fuzz-unpack-XXXXXX");
		if (mkdtemp(fence) == NULL)
			abort();
	}
	snprintf(root, sizeof(root), "%s/root", fence);
	fs_remove_path(root);
	if (mkdir(root, 0755) < 0)
		abort();
	fd = open(root, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		abort();
	unpack_layer_mem(data, size, fd, NULL, err, sizeof(err));
	hashed_pass(data, size, fd, size > 0 && (data[size - 1] & 1) != 0);
	setid_pass(fd);
	close(fd);
	check_fence();
	fs_remove_path(root);
	return 0;
}
