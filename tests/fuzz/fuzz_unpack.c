/* fuzz_unpack.c: the layer unpacker (agent/unpack.c) on arbitrary tar,
 * tar+gzip and tar+zstd bytes, into a scratch root under a fence directory:
 * after each input nothing may exist in the fence except the root. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "unpack.h"

static char fence[64];

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
	close(fd);
	check_fence();
	fs_remove_path(root);
	return 0;
}
