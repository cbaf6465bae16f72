/* cmd_version.c: drover version: the CLI's and the coordinator's versions. */
#include <getopt.h>
#include <string.h>

#include "client.h"
#include "ctl.h"
#include "output.h"

static int run(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"client", no_argument, NULL, 'c'},
	        {"json", no_argument, NULL, 'j'},
	        {NULL, 0, NULL, 0},
	};
	bool client_only = false, json = false;
	json_t *health = NULL, *out;
	int c, code;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'c')
			client_only = true;
		else if (c == 'j')
			json = true;
		else
			return CTL_EXIT_USAGE;
	}
	if (optind != argc) {
		ctl_usage(&ctl_cmd_version, stderr);
		return CTL_EXIT_USAGE;
	}
	code = client_only ? 0 : ctl_call(ctl, "GET", "/healthz", NULL, &health);
	if (json) {
		out = json_pack("{s:s, s:s*, s:s}", "client", DROVER_VERSION, "coordinator",
		                json_string_value(json_object_get(health, "version")), "url",
		                ctl->url);
		ctl_print_json(stdout, out);
		json_decref(out);
	} else {
		printf("drover %s\n", DROVER_VERSION);
		if (health)
			printf("coordinator %s at %s\n", ctl_str(health, "version"), ctl->url);
	}
	json_decref(health);
	return code;
}

const struct ctl_cmd ctl_cmd_version = {
        .name = "version",
        .usage = "version [--client] [--json]",
        .summary = "show the versions of drover and of the coordinator",
        .run = run,
};
