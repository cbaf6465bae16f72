/* cmd_audit.c: drover audit: who changed what, from where (admin token). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "client.h"
#include "ctl.h"
#include "output.h"

static void print_table(const json_t *entries)
{
	static const char *const headers[] = {"ID",     "TIME", "ACTOR",  "ROLE",   "FROM",
	                                      "METHOD", "PATH", "STATUS", "DETAIL", NULL};
	struct ctl_table *t = ctl_table_new(headers);
	char when[32];
	const json_t *e;
	size_t i;

	if (!t)
		return;
	json_array_foreach(entries, i, e)
	{
		ctl_fmt_time(json_integer_value(json_object_get(e, "at_ms")), when);
		ctl_table_add(t, ctl_str(e, "id"), when, ctl_str(e, "actor"), ctl_str(e, "role"),
		              ctl_str(e, "remote"), ctl_str(e, "method"), ctl_str(e, "path"),
		              ctl_str(e, "status"), ctl_str(e, "detail"));
	}
	ctl_table_print(t, stdout);
}

static int run(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"json", no_argument, NULL, 'j'},
	        {"limit", required_argument, NULL, 'n'},
	        {NULL, 0, NULL, 0},
	};
	bool json = false;
	long limit = 50;
	char path[64], *end;
	json_t *reply = NULL;
	int c, code;

	while ((c = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
		if (c == 'j') {
			json = true;
		} else if (c == 'n') {
			limit = strtol(optarg, &end, 10);
			if (*end || limit < 1 || limit > 1000) {
				fprintf(stderr, "drover audit: --limit must be 1..1000\n");
				return CTL_EXIT_USAGE;
			}
		} else {
			ctl_usage(&ctl_cmd_audit, stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		ctl_usage(&ctl_cmd_audit, stderr);
		return CTL_EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/v1/audit?limit=%ld", limit);
	code = ctl_call(ctl, "GET", path, NULL, &reply);
	if (code != CTL_EXIT_OK)
		return code;
	if (json)
		ctl_print_json(stdout, json_object_get(reply, "entries"));
	else
		print_table(json_object_get(reply, "entries"));
	json_decref(reply);
	return CTL_EXIT_OK;
}

const struct ctl_cmd ctl_cmd_audit = {
        .name = "audit",
        .usage = "audit [--json] [--limit N]",
        .summary = "show the audit log of changes, newest first (admin)",
        .run = run,
};
