/* test_fetch_proto.c: the fetch helper's pipe protocol (agent/fetch_proto.c), pure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "fetch_proto.h"

static int feed_all(struct fetch_reader *r, const void *p, size_t n)
{
	fetch_reader_init(r);
	fetch_reader_feed(r, p, n);
	fetch_reader_eof(r);
	return r->res.kind;
}

static void assert_done_equal(const struct fetch_done *a, const struct fetch_done *b)
{
	/* field by field: padding bytes of the struct are not part of the value */
	assert_int_equal(a->bytes_fetched, b->bytes_fetched);
	assert_int_equal(a->bytes_cached, b->bytes_cached);
	assert_int_equal(a->blobs_fetched, b->blobs_fetched);
	assert_int_equal(a->blobs_cached, b->blobs_cached);
	assert_int_equal(a->fetch_ms, b->fetch_ms);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_int_equal(a->no_new_privs, b->no_new_privs);
}

static void done_round_trip(void **state)
{
	struct fetch_done d = {.bytes_fetched = 52428800,
	                       .bytes_cached = 7,
	                       .blobs_fetched = 3,
	                       .blobs_cached = 1,
	                       .fetch_ms = 349,
	                       .uid = 999,
	                       .gid = 995,
	                       .no_new_privs = true};
	uint8_t f[FETCH_FRAME_MAX + 4];
	struct fetch_reader r;
	size_t n = fetch_frame_done(&d, f, sizeof(f));
	(void)state;
	assert_true(n > 5);
	assert_int_equal(feed_all(&r, f, n), FETCH_DONE);
	assert_done_equal(&r.res.done, &d);
	/* byte by byte: the same */
	fetch_reader_init(&r);
	for (size_t i = 0; i < n; i++)
		fetch_reader_feed(&r, f + i, 1);
	fetch_reader_eof(&r);
	assert_int_equal(r.res.kind, FETCH_DONE);
	assert_done_equal(&r.res.done, &d);
}

static void error_is_printable_and_capped(void **state)
{
	char msg[3000];
	uint8_t f[FETCH_FRAME_MAX + 4];
	struct fetch_reader r;
	size_t n;
	(void)state;
	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	msg[0] = '\n';
	msg[1] = '\033';
	n = fetch_frame_error(msg, f, sizeof(f));
	assert_int_equal(n, FETCH_FRAME_MAX + 4);
	assert_int_equal(feed_all(&r, f, n), FETCH_ERROR);
	assert_int_equal(strlen(r.res.error), FETCH_ERROR_MAX);
	assert_int_equal(r.res.error[0], '?');
	assert_int_equal(r.res.error[1], '?');
	assert_int_equal(r.res.error[2], 'x');
}

static void bad_streams(void **state)
{
	const uint8_t zero_len[] = {0, 0, 0, 0};
	const uint8_t too_long[] = {0, 0, 4, 1, 'D'};
	const uint8_t unknown[] = {0, 0, 0, 2, 'X', 'y'};
	const uint8_t cut[] = {0, 0, 0, 9, 'E', 'a'};
	const uint8_t two[] = {0, 0, 0, 2, 'E', 'a', 0, 0, 0, 2, 'E', 'b'};
	const char *bad_done[] = {"1 2 3 4 5 6 7",
	                          "1 2 3 4 5 6 7 2",
	                          "01 2 3 4 5 6 7 1",
	                          " 1 2 3 4 5 6 7 1",
	                          "1 2 3 4 5 6 7 1 ",
	                          "1 2 3 4294967296 5 6 7 1",
	                          "18446744073709551616 2 3 4 5 6 7 1",
	                          "1 2 3 4 5 6 -7 1",
	                          ""};
	struct fetch_reader r;
	uint8_t f[64];
	(void)state;
	assert_int_equal(feed_all(&r, zero_len, sizeof(zero_len)), FETCH_BAD);
	assert_int_equal(feed_all(&r, too_long, sizeof(too_long)), FETCH_BAD);
	assert_non_null(strstr(r.res.error, "length"));
	assert_int_equal(feed_all(&r, unknown, sizeof(unknown)), FETCH_BAD);
	assert_int_equal(feed_all(&r, cut, sizeof(cut)), FETCH_BAD);
	assert_non_null(strstr(r.res.error, "cut"));
	assert_int_equal(feed_all(&r, two, sizeof(two)), FETCH_BAD);
	assert_int_equal(feed_all(&r, "", 0), FETCH_BAD); /* nothing at all */
	/* a second write after a complete frame spoils it too */
	fetch_reader_init(&r);
	assert_int_equal(fetch_reader_feed(&r, two, 6), FETCH_ERROR);
	assert_int_equal(fetch_reader_feed(&r, two + 6, 6), FETCH_BAD);
	for (size_t i = 0; i < sizeof(bad_done) / sizeof(bad_done[0]); i++) {
		size_t l = strlen(bad_done[i]) + 1;
		f[0] = 0, f[1] = 0, f[2] = 0, f[3] = (uint8_t)l, f[4] = 'D';
		memcpy(f + 5, bad_done[i], l - 1);
		assert_int_equal(feed_all(&r, f, l + 4), FETCH_BAD);
	}
}

static void stream_capped(void **state)
{
	static uint8_t junk[FETCH_STREAM_MAX + 1];
	struct fetch_reader r;
	(void)state;
	fetch_reader_init(&r);
	assert_int_equal(fetch_reader_feed(&r, junk, sizeof(junk)), FETCH_BAD);
	assert_non_null(strstr(r.res.error, "protocol error"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(done_round_trip),
	        cmocka_unit_test(error_is_printable_and_capped),
	        cmocka_unit_test(bad_streams),
	        cmocka_unit_test(stream_capped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
