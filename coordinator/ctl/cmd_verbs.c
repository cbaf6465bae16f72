/*
 * cmd_verbs.c: drover pause|resume|promote|abort|rollback ID [--json]: the
 * operator commands on a deployment (POST /v1/deployments/ID/VERB). One
 * handler serves all five; the verb is the command's name.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "ctl.h"
#include "err.h"
#include "output.h"

static const struct ctl_cmd *verb_cmd(const char *name);

int ctl_post_verb(const struct ctl *ctl, const struct ctl_cmd *self, int argc, char **argv,
                  const json_t *body, json_t **dep)
{
	char esc[256], path[320];

	if (optind + 1 != argc) {
		ctl_usage(self, stderr);
		return CTL_EXIT_USAGE;
	}
	if (ctl_escape(argv[optind], esc, sizeof(esc)) != DRV_OK) {
		fprintf(stderr, "drover %s: the id is too long\n", self->name);
		return CTL_EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/v1/deployments/%s/%s", esc, self->name);
	return ctl_call(ctl, "POST", path, body, dep);
}

static int run(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"json", no_argument, NULL, 'j'},
	        {NULL, 0, NULL, 0},
	};
	const struct ctl_cmd *self = verb_cmd(argv[0]);
	json_t *dep = NULL;
	bool json = false;
	int c, code;

	/* drover promote ID --to ENV: promotion of a release (cmd_promote.c) */
	for (int i = 1; self == &ctl_cmd_promote && i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--to") == 0 || strncmp(argv[i], "--to=", 5) == 0)
			return ctl_cmd_promote_release.run(ctl, argc, argv);
	}

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c != 'j') {
			ctl_usage(self, stderr);
			return CTL_EXIT_USAGE;
		}
		json = true;
	}
	code = ctl_post_verb(ctl, self, argc, argv, NULL, &dep);
	if (code != CTL_EXIT_OK)
		return code;
	if (json)
		ctl_print_json(stdout, dep);
	else
		printf("%s: %s (phase %s)\n", ctl_str(dep, "id"), ctl_str(dep, "state"),
		       ctl_str(dep, "phase"));
	json_decref(dep);
	return CTL_EXIT_OK;
}

const struct ctl_cmd ctl_cmd_pause = {
        .name = "pause",
        .usage = "pause [--json] ID",
        .summary = "pause a deployment: no new step starts until resume",
        .run = run,
};
const struct ctl_cmd ctl_cmd_resume = {
        .name = "resume",
        .usage = "resume [--json] ID",
        .summary = "resume a paused deployment",
        .run = run,
};
const struct ctl_cmd ctl_cmd_promote = {
        .name = "promote",
        .usage = "promote [--json] ID\npromote [--wait] [--json] [--override REASON] ID --to ENV",
        .summary = "end a canary pause (next step) or finalize a blue-green switch now; "
                   "with --to ENV: promote-release",
        .run = run,
};
const struct ctl_cmd ctl_cmd_abort = {
        .name = "abort",
        .usage = "abort [--json] ID",
        .summary = "stop a deployment where it stands (no rollback)",
        .run = run,
};
const struct ctl_cmd ctl_cmd_rollback = {
        .name = "rollback",
        .usage = "rollback [--json] ID",
        .summary = "roll a deployment back to the previous release on every host",
        .run = run,
};

static const struct ctl_cmd *verb_cmd(const char *name)
{
	static const struct ctl_cmd *const verbs[] = {&ctl_cmd_pause, &ctl_cmd_resume,
	                                              &ctl_cmd_promote, &ctl_cmd_abort,
	                                              &ctl_cmd_rollback};

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(verbs[i]->name, name) == 0)
			return verbs[i];
	}
	return &ctl_cmd_pause; /* not reached: main.c runs us by these names */
}
