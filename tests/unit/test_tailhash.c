/* test_tailhash.c: a file's SHA-256 computed on a worker while it is written
 * (agent/tailhash.c). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "err.h"
#include "sha256.h"
#include "tailhash.h"

#define DATA_LEN (3u << 20)

static char path[] = "/tmp/test_tailhash.XXXXXX";
static unsigned char *data;

static int setup(void **state)
{
	int fd = mkstemp(path);

	(void)state;
	if (fd < 0)
		return -1;
	close(fd);
	data = malloc(DATA_LEN);
	if (data == NULL)
		return -1;
	for (size_t i = 0; i < DATA_LEN; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	free(data);
	return 0;
}

/* The file (emptied), a hash holding data[0, from) and a worker after it. */
struct fx {
	int fd;
	struct drv_sha256 *h;
	struct tailhash *t;
};

static void begin(struct fx *f, int flags, size_t from)
{
	f->fd = open(path, flags | O_TRUNC | O_CLOEXEC);
	assert_true(f->fd >= 0);
	assert_int_equal(write(f->fd, data, from), (ssize_t)from);
	assert_int_equal(drv_sha256_new(&f->h), DRV_OK);
	assert_int_equal(drv_sha256_update(f->h, data, from), DRV_OK);
	assert_int_equal(tailhash_new(f->fd, f->h, from, &f->t), DRV_OK);
}

static void end(struct fx *f)
{
	tailhash_free(f->t);
	drv_sha256_free(f->h);
	close(f->fd);
}

/* Write data[from, to) in pieces of odd sizes, telling the worker after each. */
static void write_pieces(struct fx *f, size_t from, size_t to)
{
	static const size_t sizes[] = {1, 7, 16384, 300001, 4096, 65535, 1048577};
	size_t off = from;

	for (size_t i = 0; off < to; i++) {
		size_t n = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
		if (n > to - off)
			n = to - off;
		assert_int_equal(write(f->fd, data + off, n), (ssize_t)n);
		off += n;
		tailhash_written(f->t, off);
	}
}

/* Wait for the worker; the hash must be that of data[0, len). */
static void expect_digest(struct fx *f, size_t len)
{
	char got[DRV_DIGEST_STR], want[DRV_DIGEST_STR];

	assert_int_equal(tailhash_wait(f->t), DRV_OK);
	assert_int_equal(drv_sha256_final(f->h, got), DRV_OK);
	assert_int_equal(drv_sha256_buf(data, len, want), DRV_OK);
	assert_string_equal(got, want);
}

static void hashes_what_is_written(void **state)
{
	struct fx f;

	(void)state;
	begin(&f, O_RDWR, 0);
	assert_int_equal(tailhash_wait(f.t), DRV_OK); /* nothing written yet */
	write_pieces(&f, 0, DATA_LEN / 2);
	assert_int_equal(tailhash_wait(f.t), DRV_OK); /* a wait in the middle */
	write_pieces(&f, DATA_LEN / 2, DATA_LEN);
	expect_digest(&f, DATA_LEN);
	end(&f);
}

/* Resuming: h already holds the first bytes, the worker starts after them. */
static void starts_at_an_offset(void **state)
{
	struct fx f;

	(void)state;
	begin(&f, O_RDWR, 123457);
	write_pieces(&f, 123457, DATA_LEN);
	expect_digest(&f, DATA_LEN);
	end(&f);
}

/* A file shorter than what was said to be written: an error, not a digest
 * of fewer bytes; after a rewind the same worker hashes the new content. */
static void short_file_fails_then_rewinds(void **state)
{
	struct fx f;

	(void)state;
	begin(&f, O_RDWR, 1000);
	tailhash_written(f.t, 5000);
	errno = 0;
	assert_int_equal(tailhash_wait(f.t), DRV_EIO);
	assert_int_equal(errno, EIO);
	assert_int_equal(tailhash_wait(f.t), DRV_EIO); /* stays failed */
	assert_int_equal(ftruncate(f.fd, 0), 0);
	assert_int_equal(lseek(f.fd, 0, SEEK_SET), 0);
	assert_int_equal(drv_sha256_reset(f.h), DRV_OK);
	tailhash_rewind(f.t, 0);
	write_pieces(&f, 0, DATA_LEN);
	expect_digest(&f, DATA_LEN);
	end(&f);
}

/* A descriptor that cannot be read: the read's errno comes back. */
static void unreadable_fd_fails(void **state)
{
	struct fx f;

	(void)state;
	begin(&f, O_WRONLY, 0);
	write_pieces(&f, 0, 4096);
	assert_int_equal(tailhash_wait(f.t), DRV_EIO);
	assert_int_equal(errno, EBADF);
	end(&f);
}

/* Freed while bytes wait to be hashed: the worker stops, nothing leaks. */
static void free_while_busy(void **state)
{
	struct fx f;

	(void)state;
	begin(&f, O_RDWR, 0);
	write_pieces(&f, 0, DATA_LEN);
	end(&f);
	tailhash_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(hashes_what_is_written),
	        cmocka_unit_test(starts_at_an_offset),
	        cmocka_unit_test(short_file_fails_then_rewinds),
	        cmocka_unit_test(unreadable_fd_fails),
	        cmocka_unit_test(free_while_busy),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
