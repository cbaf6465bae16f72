/*
 * cmd_status.c: drover status [ID] [--json]: one deployment (the newest
 * without ID) with each tier, service, host and hook (render.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "client.h"
#include "clock.h"
#include "ctl.h"
#include "err.h"
#include "output.h"
#include "render.h"

/* The id of the newest deployment into id; 1 when there is none, else an
 * exit status. */
static int newest(const struct ctl *ctl, char *id, size_t cap)
{
	json_t *reply = NULL;
	const char *s;
	int code;

	code = ctl_call(ctl, "GET", "/v1/deployments?limit=1", NULL, &reply);
	if (code != CTL_EXIT_OK)
		return code;
	s = json_string_value(
	        json_object_get(json_array_get(json_object_get(reply, "deployments"), 0), "id"));
	if (s)
		snprintf(id, cap, "%s", s);
	json_decref(reply);
	return s ? CTL_EXIT_OK : -1;
}

static int show(const struct ctl *ctl, const char *id, bool json)
{
	char esc[256], path[300], *text;
	json_t *dep = NULL;
	int code;

	if (ctl_escape(id, esc, sizeof(esc)) != DRV_OK) {
		fprintf(stderr, "drover status: the id is too long\n");
		return CTL_EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/v1/deployments/%s", esc);
	code = ctl_call(ctl, "GET", path, NULL, &dep);
	if (code != CTL_EXIT_OK)
		return code;
	if (json) {
		ctl_print_json(stdout, dep);
	} else {
		text = ctl_render_status(dep, drv_wall_ms());
		if (text)
			fputs(text, stdout);
		free(text);
	}
	json_decref(dep);
	return CTL_EXIT_OK;
}

static int run(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"json", no_argument, NULL, 'j'},
	        {NULL, 0, NULL, 0},
	};
	bool json = false;
	char id[256];
	int c, code;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c != 'j') {
			ctl_usage(&ctl_cmd_status, stderr);
			return CTL_EXIT_USAGE;
		}
		json = true;
	}
	if (optind + 1 < argc) {
		ctl_usage(&ctl_cmd_status, stderr);
		return CTL_EXIT_USAGE;
	}
	if (optind < argc)
		return show(ctl, argv[optind], json);
	code = newest(ctl, id, sizeof(id));
	if (code == -1) {
		if (json)
			puts("null");
		else
			puts("no deployments yet");
		return CTL_EXIT_OK;
	}
	return code == CTL_EXIT_OK ? show(ctl, id, json) : code;
}

const struct ctl_cmd ctl_cmd_status = {
        .name = "status",
        .usage = "status [--json] [ID]",
        .summary = "show a deployment (the newest without ID): tiers, services, hosts, hooks",
        .run = run,
};
