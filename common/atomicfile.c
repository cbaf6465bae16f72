/* atomicfile.c: atomic writes, capped reads, secrecy checks. */
#include "atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return DRV_EIO;
		}
		p += w;
		len -= (size_t)w;
	}
	return DRV_OK;
}

static void fsync_dir_of(const char *path)
{
	char copy[PATH_MAX];
	int fd;

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
		return;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static int write_renamed(const char *path, const void *data, size_t len, mode_t mode, bool durable)
{
	char tmp[PATH_MAX];
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
		return DRV_EINVAL;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return DRV_EIO;
	rc = fchmod(fd, mode) == 0 ? DRV_OK : DRV_EIO;
	if (rc == DRV_OK)
		rc = write_all(fd, data, len);
	if (rc == DRV_OK && durable && fsync(fd) != 0)
		rc = DRV_EIO;
	if (close(fd) != 0 && rc == DRV_OK)
		rc = DRV_EIO;
	if (rc == DRV_OK && rename(tmp, path) != 0)
		rc = DRV_EIO;
	if (rc != DRV_OK) {
		int saved = errno;
		unlink(tmp);
		errno = saved;
		return rc;
	}
	if (durable)
		fsync_dir_of(path);
	return DRV_OK;
}

int drv_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_renamed(path, data, len, mode, true);
}

int drv_write_replace(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_renamed(path, data, len, mode, false);
}

int drv_read_file(const char *path, size_t max, char **out, size_t *out_len)
{
	struct stat st;
	char *buf;
	size_t n = 0;
	int fd, rc = DRV_OK;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? DRV_ENOENT : DRV_EIO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return DRV_EIO;
	}
	if ((size_t)st.st_size > max) {
		close(fd);
		return DRV_ETOOBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return DRV_ENOMEM;
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r == 0 ? DRV_OK : DRV_EIO;
			break;
		}
		n += (size_t)r;
	}
	close(fd);
	if (rc != DRV_OK) {
		free(buf);
		return rc;
	}
	buf[n] = '\0';
	*out = buf;
	if (out_len != NULL)
		*out_len = n;
	return DRV_OK;
}

int drv_check_private(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return errno == ENOENT ? DRV_ENOENT : DRV_EIO;
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		return DRV_EPERM;
	return DRV_OK;
}

int drv_mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return DRV_EINVAL;
	len = strlen(buf);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char saved = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return DRV_EIO;
		buf[i] = saved;
	}
	return DRV_OK;
}
