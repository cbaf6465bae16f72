/* test_textcut.c: texts cut at a word boundary with an ellipsis, URLs whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "textcut.h"

#define REASON                                                                                     \
	"project-coordinator not healthy within 6000 ms (last check: GET "                         \
	"http://127.0.0.1:8080/health: 503 (outside the range))"

static void test_fits(void **state)
{
	char out[200];

	(void)state;
	assert_string_equal(drv_text_cut(out, sizeof(out), REASON, 150), REASON);
	assert_string_equal(drv_text_cut(out, sizeof(out), "", 10), "");
	assert_string_equal(drv_text_cut(out, sizeof(out), NULL, 10), "");
	assert_string_equal(drv_text_cut(out, sizeof(out), "abc", 3), "abc");
}

/* The cut that used to end in "GET http://127.0.0.1": the URL goes whole. */
static void test_url_whole(void **state)
{
	char out[200];

	(void)state;
	drv_text_cut(out, sizeof(out), REASON, 80);
	assert_string_equal(out,
	                    "project-coordinator not healthy within 6000 ms (last check: GET...");
	assert_true(strlen(out) <= 80);
	drv_text_cut(out, sizeof(out), REASON, 100);
	assert_string_equal(out, "project-coordinator not healthy within 6000 ms (last check: GET "
	                         "http://127.0.0.1:8080/health: 503...");
	for (size_t max = 4; max < strlen(REASON); max++) {
		const char *url = "http://127.0.0.1:8080/health:";
		drv_text_cut(out, sizeof(out), REASON, max);
		assert_true(strlen(out) <= max);
		assert_string_equal(out + strlen(out) - 3, "...");
		/* Either the whole URL or none of it. */
		if (strstr(out, "http") != NULL)
			assert_non_null(strstr(out, url));
	}
}

static void test_words_and_brackets(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(drv_text_cut(out, sizeof(out), "one two three four", 12), "one two...");
	/* No dangling opening bracket before the ellipsis. */
	assert_string_equal(drv_text_cut(out, sizeof(out), "failed (exit 3 after 10 s)", 12),
	                    "failed...");
	/* One long word: cut inside it, still with the ellipsis. */
	assert_string_equal(drv_text_cut(out, sizeof(out), "abcdefghijklmnopqrstuvwxyz", 10),
	                    "abcdefg...");
	/* max beyond the buffer is clamped to it. */
	drv_text_cut(out, 8, "one two three", 100);
	assert_string_equal(out, "one...");
	/* Tiny limits: no room for an ellipsis. */
	assert_string_equal(drv_text_cut(out, sizeof(out), "abcdef", 2), "ab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_fits),
	        cmocka_unit_test(test_url_whole),
	        cmocka_unit_test(test_words_and_brackets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
