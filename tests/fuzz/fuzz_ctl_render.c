/*
 * fuzz_ctl_render.c: the CLI's deployment renderers (coordinator/ctl/
 * render.h) on whatever JSON a coordinator might send: every renderer runs
 * on it, and the changes renderer on it against itself and against an
 * empty object. No output may hold an escape character.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

static void check(char *s)
{
	if (s != NULL && strchr(s, '\x1b') != NULL)
		abort();
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL), *empty;

	if (v == NULL)
		return 0;
	empty = json_object();
	check(ctl_render_status(v, 1764137465000LL));
	check(ctl_render_history(v, 1764137465000LL));
	check(ctl_render_progress(v, 1764137465000LL, (int)(size % 120)));
	check(ctl_render_changes(NULL, v));
	check(ctl_render_changes(v, v));
	check(ctl_render_changes(empty, v));
	check(ctl_render_summary(v, 0));
	check(ctl_render_plan_errors(v, "plan.yaml"));
	json_decref(empty);
	json_decref(v);
	return 0;
}
