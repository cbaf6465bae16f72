/*
 * cmd_promote.c: drover promote-release ID --to ENV [--wait] [--json]
 * [--override REASON]: deploy the release of a succeeded deployment (the
 * same plan, files and image digests) to the next environment of its
 * lifecycle, with that environment's variables
 * (POST /v1/deployments/ID/promote-release, docs/environments.md).
 * `drover promote ID --to ENV` is the same command.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "ctl.h"
#include "err.h"
#include "output.h"

struct popts {
	const char *to, *override;
	bool wait, json;
};

static int parse(int argc, char **argv, struct popts *o)
{
	static const struct option longopts[] = {
	        {"to", required_argument, NULL, 't'},
	        {"override", required_argument, NULL, 'o'},
	        {"wait", no_argument, NULL, 'w'},
	        {"json", no_argument, NULL, 'j'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 't': o->to = optarg; break;
		case 'o': o->override = optarg; break;
		case 'w': o->wait = true; break;
		case 'j': o->json = true; break;
		default: return DRV_EINVAL;
		}
	}
	if (optind + 1 != argc || o->to == NULL || o->to[0] == '\0')
		return DRV_EINVAL;
	return DRV_OK;
}

static int run(struct ctl *ctl, int argc, char **argv)
{
	struct popts o = {0};
	char esc[256], oesc[700], path[1100];
	json_t *body, *dep = NULL, *final = NULL;
	int code;

	if (parse(argc, argv, &o) != DRV_OK) {
		ctl_usage(&ctl_cmd_promote_release, stderr);
		return CTL_EXIT_USAGE;
	}
	if (ctl_escape(argv[optind], esc, sizeof(esc)) != DRV_OK ||
	    (o.override && ctl_escape(o.override, oesc, sizeof(oesc)) != DRV_OK)) {
		fprintf(stderr, "drover promote-release: the id or the reason is too long\n");
		return CTL_EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/v1/deployments/%s/promote-release%s%s", esc,
	         o.override ? "?override=" : "", o.override ? oesc : "");
	body = json_pack("{s:s}", "to", o.to);
	if (body == NULL)
		return CTL_EXIT_FAILED;
	code = ctl_call(ctl, "POST", path, body, &dep);
	json_decref(body);
	if (code != CTL_EXIT_OK)
		return code;
	if (!o.wait) {
		if (o.json)
			ctl_print_json(stdout, dep);
		else
			printf("%s: release %s of %s promoted from %s to %s (%s)\n",
			       ctl_str(dep, "id"), ctl_str(dep, "release"), argv[optind],
			       ctl_str(dep, "promoted_from"), ctl_str(dep, "environment"),
			       ctl_str(dep, "state"));
		json_decref(dep);
		return CTL_EXIT_OK;
	}
	code = ctl_follow_deployment(ctl, dep, o.json ? stderr : stdout, &final);
	if (o.json && final != NULL)
		ctl_print_json(stdout, final);
	json_decref(final);
	return code;
}

const struct ctl_cmd ctl_cmd_promote_release = {
        .name = "promote-release",
        .usage = "promote-release [--wait] [--json] [--override REASON] ID --to ENV",
        .summary = "deploy the release of succeeded deployment ID (same plan, files, "
                   "digests) to environment ENV, the next of its lifecycle",
        .run = run,
};
