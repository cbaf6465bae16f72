/* cmd_history.c: drover history [--json] [--limit N]: deployments, newest
 * first. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "client.h"
#include "clock.h"
#include "ctl.h"
#include "output.h"
#include "render.h"

#define HISTORY_DEFAULT 20
#define HISTORY_MAX     1000

static int run(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"json", no_argument, NULL, 'j'},
	        {"limit", required_argument, NULL, 'n'},
	        {NULL, 0, NULL, 0},
	};
	bool json = false;
	long limit = HISTORY_DEFAULT;
	char path[64], *end, *text;
	json_t *reply = NULL;
	int c, code;

	while ((c = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
		if (c == 'j') {
			json = true;
		} else if (c == 'n') {
			limit = strtol(optarg, &end, 10);
			if (*end || limit < 1 || limit > HISTORY_MAX) {
				fprintf(stderr, "drover history: --limit must be 1..%d\n",
				        HISTORY_MAX);
				return CTL_EXIT_USAGE;
			}
		} else {
			ctl_usage(&ctl_cmd_history, stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		ctl_usage(&ctl_cmd_history, stderr);
		return CTL_EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/v1/deployments?limit=%ld", limit);
	code = ctl_call(ctl, "GET", path, NULL, &reply);
	if (code != CTL_EXIT_OK)
		return code;
	if (json) {
		ctl_print_json(stdout, json_object_get(reply, "deployments"));
	} else {
		text = ctl_render_history(json_object_get(reply, "deployments"), drv_wall_ms());
		if (text)
			fputs(text, stdout);
		free(text);
	}
	json_decref(reply);
	return CTL_EXIT_OK;
}

const struct ctl_cmd ctl_cmd_history = {
        .name = "history",
        .usage = "history [--json] [--limit N]",
        .summary = "list deployments, newest first",
        .run = run,
};
