/*
 * test_ctl_render.c: the CLI's deployment renderers (coordinator/ctl/
 * render.h) against golden files in tests/unit/ctl_render/: each case reads
 * a deployment object (as the API serves it), renders it and compares the
 * text byte for byte with NAME.txt. To regenerate after a deliberate change:
 * CTL_RENDER_UPDATE=1 ./test_ctl_render, then review the diff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "atomicfile.h"
#include "ctl.h"
#include "err.h"
#include "render.h"

#define NOW 1764137465000LL /* 65 s after the fixtures' deployments were created */

static json_t *load(const char *name)
{
	char path[512];
	json_error_t je;
	json_t *v;

	snprintf(path, sizeof(path), "%s/%s", CTL_RENDER_DIR, name);
	v = json_load_file(path, 0, &je);
	if (!v)
		fail_msg("%s:%d: %s", path, je.line, je.text);
	return v;
}

/* Compare got with the golden file (or write it with CTL_RENDER_UPDATE). */
static void golden(const char *name, char *got)
{
	char path[512], *want = NULL;
	size_t len;

	assert_non_null(got);
	snprintf(path, sizeof(path), "%s/%s", CTL_RENDER_DIR, name);
	if (getenv("CTL_RENDER_UPDATE")) {
		assert_int_equal(drv_write_atomic(path, got, strlen(got), 0644), DRV_OK);
		free(got);
		return;
	}
	assert_int_equal(drv_read_file(path, 1 << 20, &want, &len), DRV_OK);
	if (strcmp(got, want) != 0) {
		fprintf(stderr, "--- %s (want)\n%s--- got\n%s---\n", name, want, got);
		fail_msg("%s differs from the rendering", name);
	}
	free(want);
	free(got);
}

static void test_status_running(void **state)
{
	json_t *d = load("running.json");

	(void)state;
	golden("running.status.txt", ctl_render_status(d, NOW));
	json_decref(d);
}

static void test_status_rolled_back(void **state)
{
	json_t *d = load("rolled_back.json");

	(void)state;
	golden("rolled_back.status.txt", ctl_render_status(d, NOW));
	json_decref(d);
}

static void test_progress(void **state)
{
	json_t *d = load("running.json"), *later = load("later.json"),
	       *rb = load("rolled_back.json");

	(void)state;
	golden("running.progress.txt", ctl_render_progress(d, NOW, 0));
	golden("later.progress.txt", ctl_render_progress(later, NOW + 5000, 0));
	golden("rolled_back.progress.txt", ctl_render_progress(rb, NOW, 0));
	golden("running.progress40.txt", ctl_render_progress(d, NOW, 40));
	json_decref(d);
	json_decref(later);
	json_decref(rb);
}

/* Every line of a frame fits in width - 1 columns, so redraws stay aligned. */
static void test_progress_width(void **state)
{
	json_t *d = load("rolled_back.json");
	char *s = ctl_render_progress(d, NOW, 30), *line;

	(void)state;
	assert_non_null(s);
	for (line = s; *line;) {
		size_t n = strcspn(line, "\n");
		assert_true(n <= 29);
		line += n + (line[n] == '\n');
	}
	free(s);
	json_decref(d);
}

static void test_changes(void **state)
{
	json_t *d = load("running.json"), *later = load("later.json"),
	       *rb = load("rolled_back.json");
	char *none;

	(void)state;
	golden("first.changes.txt", ctl_render_changes(NULL, d));
	golden("later.changes.txt", ctl_render_changes(d, later));
	golden("rolled_back.changes.txt", ctl_render_changes(NULL, rb));
	none = ctl_render_changes(later, later);
	assert_string_equal(none, "");
	free(none);
	/* rolling_back -> rolled_back with the same reason: the reason is not
	 * repeated, and the final state comes after the hosts' lines. */
	{
		json_t *was = json_deep_copy(rb);
		char *s, *last;
		json_object_set_new(was, "state", json_string("rolling_back"));
		json_object_set_new(was, "phase", json_string("tiers"));
		s = ctl_render_changes(was, rb);
		assert_non_null(s);
		last = strrchr(s, '\n');
		assert_non_null(last);
		*last = '\0';
		last = strrchr(s, '\n');
		assert_string_equal(last ? last + 1 : s, "dep-8 rolled_back (phase done)");
		free(s);
		json_decref(was);
	}
	json_decref(d);
	json_decref(later);
	json_decref(rb);
}

/* drover deploy --wait into a pipe: lines from the events in the engine's
 * order; an event at or below the last id seen (a resumed stream) prints
 * nothing; a rolled-back host shows the change it went through. */
static void test_events(void **state)
{
	json_t *in = load("events.json"), *ev;
	struct ctl_follow *f = ctl_follow_new(json_object_get(in, "dep"));
	char *all = NULL, *line;
	size_t len = 0, i;
	FILE *out = open_memstream(&all, &len);

	(void)state;
	assert_non_null(f);
	assert_non_null(out);
	json_array_foreach(json_object_get(in, "events"), i, ev)
	{
		line = ctl_render_event(f, json_integer_value(json_object_get(ev, "id")),
		                        json_string_value(json_object_get(ev, "kind")),
		                        json_object_get(ev, "data"));
		assert_non_null(line);
		fputs(line, out);
		free(line);
	}
	fclose(out);
	ctl_follow_free(f);
	json_decref(in);
	golden("events.txt", all);
}

/* Whether event id about host (state st) printed a line naming it. */
static bool shown(struct ctl_follow *f, int64_t id, const char *kind, const char *host,
                  const char *st)
{
	char data[256];
	json_t *d;
	char *line;
	bool named;

	snprintf(data, sizeof(data),
	         "{\"tier\":\"core\",\"service\":\"api\",\"host\":\"%s\",\"state\":\"%s\"}", host,
	         st);
	d = json_loads(data, 0, NULL);
	assert_non_null(d);
	line = ctl_render_event(f, id, kind, d);
	json_decref(d);
	assert_non_null(line);
	named = strstr(line, host) != NULL;
	free(line);
	return named;
}

/* On PostgreSQL an event can commit after higher ids and arrive late: it is
 * shown once when it is news (another host), not when a newer event about
 * the same host was printed, and a repeat prints nothing. */
static void test_events_late(void **state)
{
	json_t *dep =
	        json_pack("{s:s, s:s, s:s}", "id", "dep-9", "state", "running", "phase", "core");
	struct ctl_follow *f = ctl_follow_new(dep);

	(void)state;
	assert_non_null(f);
	assert_true(shown(f, 10, "host", "h1", "starting"));
	assert_true(shown(f, 14, "host", "h2", "healthy"));
	assert_true(shown(f, 12, "host", "h3", "starting"));  /* late, another host: news */
	assert_false(shown(f, 12, "host", "h3", "starting")); /* a repeat */
	assert_false(shown(f, 13, "host", "h2", "starting")); /* late, older than 14 printed */
	assert_true(shown(f, 11, "host", "h1", "healthy"));   /* late, newer than 10 */
	assert_false(shown(f, 14, "host", "h4", "healthy"));  /* a repeated id */
	assert_true(shown(f, 5000, "host", "h5", "healthy"));
	/* many gaps: the oldest are forgotten, the newest kept */
	for (int64_t id = 5002; id < 5002 + 2 * 300; id += 2)
		shown(f, id, "hook", "-", "-");
	assert_true(shown(f, 5001 + 2 * 299, "host", "h6", "healthy"));
	assert_false(shown(f, 5003, "host", "h7", "healthy"));
	ctl_follow_free(f);
	json_decref(dep);
}

static void test_summary(void **state)
{
	json_t *d = load("rolled_back.json"), *r = load("running.json");

	(void)state;
	golden("rolled_back.summary.txt", ctl_render_summary(d, NOW));
	golden("running.summary.txt", ctl_render_summary(r, NOW));
	json_decref(d);
	json_decref(r);
}

static void test_history(void **state)
{
	json_t *list = load("history.json"), *empty = json_array();

	(void)state;
	golden("history.txt", ctl_render_history(list, NOW));
	golden("history_empty.txt", ctl_render_history(empty, NOW));
	json_decref(list);
	json_decref(empty);
}

static void test_plan_errors(void **state)
{
	json_t *e = load("plan_errors.json");
	json_t *one =
	        json_pack("{s:s, s:s, s:s, s:i}", "code", "unresolved-image", "message",
	                  "no such tag: 9.9.9", "field", "tiers[1].services[0].image", "line", 40);

	(void)state;
	golden("plan_errors.txt", ctl_render_plan_errors(e, "plans/berrys.yaml"));
	golden("plan_error_one.txt", ctl_render_plan_errors(one, "berrys.yaml"));
	/* A message that names its field already does not get it twice. */
	json_object_set_new(one, "message",
	                    json_string("tiers[1].services[0].image: agent \"x\" is unknown"));
	{
		char *s = ctl_render_plan_errors(one, "b.yaml");
		assert_string_equal(
		        s, "b.yaml:40: tiers[1].services[0].image: agent \"x\" is unknown\n");
		free(s);
	}
	json_decref(e);
	json_decref(one);
}

/* Nothing the server says reaches the terminal as an escape sequence. */
static void test_no_escapes(void **state)
{
	json_t *d = load("rolled_back.json");
	char *outs[4];

	(void)state;
	outs[0] = ctl_render_status(d, NOW);
	outs[1] = ctl_render_progress(d, NOW, 0);
	outs[2] = ctl_render_changes(NULL, d);
	json_object_set_new(d, "reason", json_string("\x1b]0;owned\x07"));
	outs[3] = ctl_render_summary(d, NOW);
	for (int i = 0; i < 4; i++) {
		assert_non_null(outs[i]);
		assert_null(strchr(outs[i], '\x1b'));
		assert_null(strchr(outs[i], '\x07'));
		free(outs[i]);
	}
	json_decref(d);
}

/* Missing members print as empty/zero; nothing crashes on odd shapes. */
static void test_odd_shapes(void **state)
{
	json_t *odd[] = {
	        json_object(),
	        json_pack("{s:s, s:i, s:s}", "id", "x", "tiers", 3, "hooks", "no"),
	        json_pack("{s:[{s:[i, {s:[s, {}]}]}]}", "tiers", "services", 1, "hosts", "h"),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		char *s[5] = {ctl_render_status(odd[i], NOW), ctl_render_progress(odd[i], NOW, 10),
		              ctl_render_changes(NULL, odd[i]), ctl_render_summary(odd[i], NOW),
		              ctl_render_history(odd[i], NOW)};
		for (int j = 0; j < 5; j++) {
			assert_non_null(s[j]);
			free(s[j]);
		}
		json_decref(odd[i]);
	}
}

static void test_state_exit(void **state)
{
	(void)state;
	assert_int_equal(ctl_state_exit("succeeded"), CTL_EXIT_OK);
	assert_int_equal(ctl_state_exit("failed"), CTL_EXIT_FAILED);
	assert_int_equal(ctl_state_exit("rolled_back"), CTL_EXIT_FAILED);
	assert_int_equal(ctl_state_exit("aborted"), CTL_EXIT_FAILED);
	assert_int_equal(ctl_state_exit("running"), -1);
	assert_int_equal(ctl_state_exit("awaiting_promotion"), -1);
	assert_int_equal(ctl_state_exit(NULL), -1);
	assert_true(ctl_state_final("aborted"));
	assert_false(ctl_state_final("paused"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_status_running), cmocka_unit_test(test_status_rolled_back),
	        cmocka_unit_test(test_progress),       cmocka_unit_test(test_progress_width),
	        cmocka_unit_test(test_changes),        cmocka_unit_test(test_events),
	        cmocka_unit_test(test_events_late),    cmocka_unit_test(test_summary),
	        cmocka_unit_test(test_history),        cmocka_unit_test(test_plan_errors),
	        cmocka_unit_test(test_no_escapes),     cmocka_unit_test(test_odd_shapes),
	        cmocka_unit_test(test_state_exit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
