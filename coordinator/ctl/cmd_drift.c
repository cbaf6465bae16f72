/*
 * cmd_drift.c: drover drift [--json]: every host whose service differs from
 * what the last successful deployment of that service put there, and how
 * (GET /v1/drift; deploy_drift.h lists the kinds). Exit 0 when nothing
 * drifted, 1 when something did. drover converge SERVICE|--all: re-apply
 * that release to the drifted hosts with the service's strategy and gates
 * (POST /v1/converge), and follow the deployment(s) to their end.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "ctl.h"
#include "output.h"

static int drift_run(struct ctl *ctl, int argc, char **argv)
{
	static const char *const headers[] = {"HOST",       "SERVICE", "KIND",
	                                      "DEPLOYMENT", "DETAIL",  NULL};
	static const struct option longopts[] = {
	        {"json", no_argument, NULL, 'j'},
	        {NULL, 0, NULL, 0},
	};
	json_t *reply = NULL, *h;
	struct ctl_table *t;
	bool json = false;
	size_t i;
	int c, code;
	json_int_t n;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c != 'j') {
			ctl_usage(&ctl_cmd_drift, stderr);
			return CTL_EXIT_USAGE;
		}
		json = true;
	}
	if (optind != argc) {
		ctl_usage(&ctl_cmd_drift, stderr);
		return CTL_EXIT_USAGE;
	}
	code = ctl_call(ctl, "GET", "/v1/drift", NULL, &reply);
	if (code != CTL_EXIT_OK)
		return code;
	n = json_integer_value(json_object_get(reply, "drifted_hosts"));
	if (json) {
		ctl_print_json(stdout, reply);
	} else if (n == 0) {
		printf("no drift: every host runs what the last successful deployment of its "
		       "services put there\n");
	} else if ((t = ctl_table_new(headers)) != NULL) {
		json_array_foreach(json_object_get(reply, "hosts"), i, h) ctl_table_add(
		        t, ctl_str(h, "host"), ctl_str(h, "service"), ctl_str(h, "kind"),
		        ctl_str(h, "deployment"), ctl_str(h, "detail"));
		ctl_table_print(t, stdout);
		printf("%lld host%s drifted\n", (long long)n, n == 1 ? "" : "s");
	}
	json_decref(reply);
	return n > 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK;
}

const struct ctl_cmd ctl_cmd_drift = {
        .name = "drift",
        .usage = "drift [--json]",
        .summary = "hosts that differ from the last successful deployment (exit 1 if any)",
        .run = drift_run,
};

static int converge_run(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"all", no_argument, NULL, 'a'},
	        {NULL, 0, NULL, 0},
	};
	json_t *reply = NULL, *body, *dep, *last;
	bool all = false;
	size_t i;
	int c, code, worst = CTL_EXIT_OK;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c != 'a') {
			ctl_usage(&ctl_cmd_converge, stderr);
			return CTL_EXIT_USAGE;
		}
		all = true;
	}
	if ((all && optind != argc) || (!all && optind + 1 != argc)) {
		ctl_usage(&ctl_cmd_converge, stderr);
		return CTL_EXIT_USAGE;
	}
	body = all ? json_pack("{s:b}", "all", 1) : json_pack("{s:s}", "service", argv[optind]);
	if (body == NULL)
		return CTL_EXIT_FAILED;
	code = ctl_call(ctl, "POST", "/v1/converge", body, &reply);
	json_decref(body);
	if (code != CTL_EXIT_OK)
		return code;
	json_array_foreach(json_object_get(reply, "deployments"), i, dep)
	{
		printf("converging: %s %s %s\n", ctl_str(dep, "id"), ctl_str(dep, "deployment"),
		       ctl_str(dep, "version"));
		fflush(stdout);
		last = NULL;
		code = ctl_follow_deployment(ctl, json_incref(dep), stdout, &last);
		json_decref(last);
		if (code > worst)
			worst = code;
	}
	json_decref(reply);
	return worst;
}

const struct ctl_cmd ctl_cmd_converge = {
        .name = "converge",
        .usage = "converge SERVICE\n"
                 "converge --all",
        .summary = "re-apply the last successful release to drifted hosts, and follow it",
        .run = converge_run,
};
