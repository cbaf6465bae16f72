/*
 * fuzz_ctl_render.c: the CLI's deployment renderers (coordinator/ctl/
 * render.h) on whatever JSON a coordinator might send: every renderer runs
 * on it, the changes renderer on it against itself and against an empty
 * object, and the event follower on it as events. No output may hold an
 * escape character.
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
	check(ctl_render_preview(v));
	/* The pipe follower on the input as a deployment and as each kind of
	 * event's data (and its members as a stream of events). */
	{
		static const char *const kinds[] = {"state", "service", "host", "hook", "other"};
		struct ctl_follow *f = ctl_follow_new(v);
		const char *key;
		json_t *m;
		int64_t id = 1;

		for (size_t k = 0; f != NULL && k < sizeof(kinds) / sizeof(kinds[0]); k++)
			check(ctl_render_event(f, id++, kinds[k], v));
		json_object_foreach(json_is_object(v) ? v : empty, key, m)
		{
			for (size_t k = 0; f != NULL && k < 4; k++)
				check(ctl_render_event(f, id++, kinds[k], m));
		}
		if (f != NULL)
			check(ctl_follow_end(f, v));
		ctl_follow_free(f);
	}
	json_decref(empty);
	json_decref(v);
	return 0;
}
