/* test_windows.c: deployment windows (deploy/windows.c): weekly windows in
 * a time zone across DST changes, windows that span midnight and the week's
 * end, one-off freezes with offsets, several windows, and the reader's
 * errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "err.h"
#include "windows.h"
#include "yamljson.h"

static int64_t at(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {
	        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};

	return (int64_t)timegm(&tm);
}

static size_t load(const char *yaml, struct drv_window **w, struct drv_cfg_diag *diag)
{
	struct drv_cfg_rd r = {.file = "d.yaml", .base_dir = "/", .diag = diag};
	struct drv_yj_error err;
	json_t *root = NULL;
	size_t n = 0;

	memset(diag, 0, sizeof(*diag));
	assert_int_equal(drv_yj_load_buffer(yaml, strlen(yaml), 1 << 16, &root, NULL, &err),
	                 DRV_OK);
	*w = NULL;
	assert_int_equal(drv_windows_read(&r, root, "windows", w, &n), DRV_OK);
	json_decref(root);
	return n;
}

/* Friday 18:00 Berlin for 60h: 16:00 UTC in summer (CEST), 17:00 in winter. */
static void weekly_follows_dst(void **state)
{
	struct drv_cfg_diag diag;
	struct drv_window *w;
	size_t n = load("[{name: weekend, days: [fri], start: \"18:00\", duration: 60h, "
	                "timezone: Europe/Berlin}]",
	                &w, &diag);

	(void)state;
	assert_int_equal(diag.n, 0);
	assert_int_equal(n, 1);
	/* 2026-07-03 is a Friday (summer) */
	assert_false(drv_window_open(w, at(2026, 7, 3, 15, 59)));
	assert_true(drv_window_open(w, at(2026, 7, 3, 16, 0)));
	assert_true(drv_window_open(w, at(2026, 7, 5, 12, 0))); /* Sunday */
	assert_true(drv_window_open(w, at(2026, 7, 6, 3, 59))); /* Monday 05:59 CEST */
	assert_false(drv_window_open(w, at(2026, 7, 6, 4, 0))); /* 60h later */
	/* 2026-12-04 is a Friday (winter) */
	assert_false(drv_window_open(w, at(2026, 12, 4, 16, 30)));
	assert_true(drv_window_open(w, at(2026, 12, 4, 17, 0)));
	assert_false(drv_window_open(w, at(2026, 12, 7, 5, 0)));
	/* the TZ of the process is left as it was */
	assert_null(getenv("TZ"));
	free(w);
}

/* Across the spring change itself: Sunday 2026-03-29 01:00 Berlin (CET,
 * 00:00 UTC) for 3h of real time ends at 03:00 UTC (05:00 CEST); and a
 * window starting at 02:30, a time that does not exist that day, still
 * opens (at 01:30 UTC, the normalized 03:30 CEST). */
static void spring_forward(void **state)
{
	struct drv_cfg_diag diag;
	struct drv_window *w;
	size_t n = load("[{name: a, days: [sun], start: \"01:00\", duration: 3h, timezone: "
	                "Europe/Berlin}, {name: b, days: [sun], start: \"02:30\", duration: 30m, "
	                "timezone: Europe/Berlin}]",
	                &w, &diag);

	(void)state;
	assert_int_equal(n, 2);
	assert_false(drv_window_open(&w[0], at(2026, 3, 28, 23, 59)));
	assert_true(drv_window_open(&w[0], at(2026, 3, 29, 0, 0)));
	assert_true(drv_window_open(&w[0], at(2026, 3, 29, 2, 59)));
	assert_false(drv_window_open(&w[0], at(2026, 3, 29, 3, 0)));
	assert_true(drv_window_open(&w[1], at(2026, 3, 29, 1, 45)));
	assert_false(drv_window_open(&w[1], at(2026, 3, 29, 2, 15)));
	/* the first open one is named */
	assert_string_equal(drv_windows_open(w, n, at(2026, 3, 29, 1, 45))->name, "a");
	assert_null(drv_windows_open(w, n, at(2026, 3, 30, 1, 45)));
	free(w);
}

/* New York, Saturday 22:00 for 4h: spans midnight into Sunday; UTC when
 * no timezone; several days. */
static void midnight_and_days(void **state)
{
	struct drv_cfg_diag diag;
	struct drv_window *w;
	size_t n = load("[{name: ny, days: [sat], start: \"22:00\", duration: 4h, timezone: "
	                "America/New_York}, {name: nights, days: [mon, tue, wed, thu], start: "
	                "\"23:30\", duration: 1h}]",
	                &w, &diag);

	(void)state;
	assert_int_equal(n, 2);
	/* 2026-11-07 is a Saturday (EST from 2026-11-01: UTC-5): 03:00-07:00 UTC Sunday */
	assert_true(drv_window_open(&w[0], at(2026, 11, 8, 3, 0)));
	assert_true(drv_window_open(&w[0], at(2026, 11, 8, 6, 59)));
	assert_false(drv_window_open(&w[0], at(2026, 11, 8, 7, 0)));
	/* 2026-10-31 is a Saturday in EDT (UTC-4): 02:00-06:00 UTC */
	assert_true(drv_window_open(&w[0], at(2026, 11, 1, 2, 0)));
	assert_false(drv_window_open(&w[0], at(2026, 11, 1, 6, 0)));
	/* 2026-12-01 is a Tuesday: 23:30 UTC to Wednesday 00:30 */
	assert_true(drv_window_open(&w[1], at(2026, 12, 2, 0, 15)));
	assert_false(drv_window_open(&w[1], at(2026, 12, 2, 0, 30)));
	/* Friday night: not a listed day */
	assert_false(drv_window_open(&w[1], at(2026, 12, 4, 23, 45)));
	free(w);
}

static void one_off(void **state)
{
	struct drv_cfg_diag diag;
	struct drv_window *w;
	char text[256];
	size_t n = load("[{name: year-end, from: \"2026-12-20T00:00:00Z\", until: "
	                "\"2027-01-04T06:00:00+01:00\", reason: year-end freeze}]",
	                &w, &diag);

	(void)state;
	assert_int_equal(n, 1);
	assert_false(drv_window_open(w, at(2026, 12, 19, 23, 59)));
	assert_true(drv_window_open(w, at(2026, 12, 20, 0, 0)));
	assert_true(drv_window_open(w, at(2027, 1, 4, 4, 59)));
	assert_false(drv_window_open(w, at(2027, 1, 4, 5, 0)));
	drv_window_describe(w, text, sizeof(text));
	assert_string_equal(text, "year-end (until 2027-01-04T05:00:00Z): year-end freeze");
	free(w);
}

static void errors(void **state)
{
	struct drv_cfg_diag diag;
	struct drv_window *w;

	(void)state;
	load("[{name: a, days: [fry], start: \"25:00\", duration: 9d, timezone: Mars/Olympus},"
	     " {name: b, from: \"2026-12-20\", until: \"2026-12-21T00:00:00Z\"},"
	     " {days: [mon], start: \"10:00\", duration: 1h, colour: red}]",
	     &w, &diag);
	assert_int_equal(diag.n, 7);
	assert_non_null(strstr(diag.msg[0], "windows[0]: [0] is not a day"));
	assert_non_null(strstr(diag.msg[1], "start must be a time of day"));
	assert_non_null(strstr(diag.msg[2], "duration must be from 1m to 168h"));
	assert_non_null(strstr(diag.msg[3], "Mars/Olympus is not a known IANA time zone"));
	assert_non_null(strstr(diag.msg[4], "windows[1]: from and until"));
	assert_non_null(strstr(diag.msg[5], "windows[2]: unknown field colour"));
	assert_non_null(strstr(diag.msg[6], "windows[2]: name is required"));
	free(w);
}

/* Allow windows: deployments only inside one (business hours in New
 * York, across the DST change); a deny window inside wins; a bad type is
 * an error. */
static void allow_windows(void **state)
{
	struct drv_cfg_diag diag;
	struct drv_window *w;
	const struct drv_window *b;
	bool outside;
	size_t n = load("[{name: hours, type: allow, days: [mon, tue, wed, thu, fri], start: "
	                "\"09:00\", duration: 8h, timezone: America/New_York},"
	                " {name: lunch, days: [wed], start: \"12:00\", duration: 1h, "
	                "timezone: America/New_York, reason: lunch}]",
	                &w, &diag);

	(void)state;
	assert_int_equal(diag.n, 0);
	assert_int_equal(n, 2);
	assert_true(w[0].allow);
	assert_false(w[1].allow);
	/* Tuesday 2026-03-03 09:00 EST is 14:00 UTC */
	b = drv_windows_blocking(w, n, at(2026, 3, 3, 13, 59), &outside);
	assert_ptr_equal(b, &w[0]);
	assert_true(outside);
	assert_null(drv_windows_blocking(w, n, at(2026, 3, 3, 14, 0), &outside));
	assert_false(outside);
	assert_null(drv_windows_blocking(w, n, at(2026, 3, 3, 21, 59), &outside));
	assert_non_null(drv_windows_blocking(w, n, at(2026, 3, 3, 22, 0), &outside));
	/* after the DST change (2026-03-08): 09:00 EDT is 13:00 UTC */
	assert_null(drv_windows_blocking(w, n, at(2026, 3, 10, 13, 0), &outside));
	assert_non_null(drv_windows_blocking(w, n, at(2026, 3, 10, 12, 59), &outside));
	/* Wednesday lunch (16:00 UTC in EDT) is denied inside the allowed hours */
	b = drv_windows_blocking(w, n, at(2026, 3, 11, 16, 30), &outside);
	assert_ptr_equal(b, &w[1]);
	assert_false(outside);
	/* Saturday: outside */
	assert_ptr_equal(drv_windows_blocking(w, n, at(2026, 3, 14, 15, 0), &outside), &w[0]);
	/* no allow window: only deny windows refuse */
	assert_null(drv_windows_blocking(&w[1], 1, at(2026, 3, 14, 15, 0), &outside));
	assert_false(outside);
	free(w);
	load("[{name: x, type: sometimes, days: [mon], start: \"10:00\", duration: 1h}]", &w,
	     &diag);
	assert_int_equal(diag.n, 1);
	assert_non_null(strstr(diag.msg[0], "windows[0]: type must be allow or deny"));
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(weekly_follows_dst),
	        cmocka_unit_test(spring_forward),
	        cmocka_unit_test(midnight_and_days),
	        cmocka_unit_test(one_off),
	        cmocka_unit_test(errors),
	        cmocka_unit_test(allow_windows),
	};

	unsetenv("TZ");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
