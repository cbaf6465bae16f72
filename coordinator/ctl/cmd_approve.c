/*
 * cmd_approve.c: drover approve ID [--comment TEXT], drover deny ID
 * [--reason TEXT] (POST /v1/deployments/ID/approve|deny: a deployment that
 * awaits approval, docs/environments.md), and drover environments [NAME]
 * (GET /v1/environments: what droverd.yaml defines and whether a
 * deployment may start there now).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "ctl.h"
#include "err.h"
#include "output.h"

static void print_approvals(const json_t *dep)
{
	const json_t *a = json_object_get(dep, "approval"), *v;
	const json_t *rounds = json_object_get(dep, "step_approvals");
	size_t i;

	/* decided at a canary step: that round */
	if (json_array_size(rounds) > 0 && strcmp(ctl_str(dep, "state"), "awaiting_approval") != 0)
		a = json_array_get(rounds, json_array_size(rounds) - 1);
	if (a == NULL)
		return;
	json_array_foreach(json_object_get(a, "approvals"), i, v)
	        printf("  approved by %s%s%s\n", ctl_str(v, "actor"),
	               ctl_str(v, "comment")[0] ? ": " : "", ctl_str(v, "comment"));
	if ((v = json_object_get(a, "denied")) != NULL)
		printf("  denied by %s%s%s\n", ctl_str(v, "actor"),
		       ctl_str(v, "comment")[0] ? ": " : "", ctl_str(v, "comment"));
}

static int decide_run(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"json", no_argument, NULL, 'j'},
	        {"comment", required_argument, NULL, 'c'},
	        {"reason", required_argument, NULL, 'c'},
	        {NULL, 0, NULL, 0},
	};
	bool approve = strcmp(argv[0], "approve") == 0, json = false;
	const struct ctl_cmd *self = approve ? &ctl_cmd_approve : &ctl_cmd_deny;
	const char *comment = NULL;
	json_t *dep = NULL, *body;
	int c, code;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'j') {
			json = true;
		} else if (c == 'c') {
			comment = optarg;
		} else {
			ctl_usage(self, stderr);
			return CTL_EXIT_USAGE;
		}
	}
	body = json_pack("{s:s}", "comment", comment ? comment : "");
	code = body ? ctl_post_verb(ctl, self, argc, argv, body, &dep) : CTL_EXIT_FAILED;
	json_decref(body);
	if (code != CTL_EXIT_OK)
		return code;
	if (json) {
		ctl_print_json(stdout, dep);
	} else {
		printf("%s: %s", ctl_str(dep, "id"), ctl_str(dep, "state"));
		if (ctl_str(dep, "reason")[0])
			printf(" (%s)", ctl_str(dep, "reason"));
		printf("\n");
		print_approvals(dep);
	}
	json_decref(dep);
	return CTL_EXIT_OK;
}

const struct ctl_cmd ctl_cmd_approve = {
        .name = "approve",
        .usage = "approve [--json] [--comment TEXT] ID",
        .summary = "approve a deployment that awaits approval, before it starts or at a "
                   "canary step (another token than the one that started it)",
        .run = decide_run,
};
const struct ctl_cmd ctl_cmd_deny = {
        .name = "deny",
        .usage = "deny [--json] [--reason TEXT] ID",
        .summary = "deny a deployment that awaits approval: it ends aborted (a canary "
                   "waiting at a step rolls back)",
        .run = decide_run,
};

/* ---- drover environments ---- */

static void env_detail(const json_t *env)
{
	const json_t *a = json_object_get(env, "approval"), *w;
	const char *k;
	json_t *v;
	size_t i;

	printf("environment %s: %s\n", ctl_str(env, "name"),
	       json_is_true(json_object_get(env, "deployable")) ? "deployments may start now"
	                                                        : "deployments are held back now");
	if (json_object_get(env, "blocked_by") != NULL)
		printf("  held back by window %s\n",
		       ctl_str(json_object_get(env, "blocked_by"), "text"));
	json_object_foreach((json_t *)json_object_get(env, "labels"), k, v)
	        printf("  label %s=%s\n", k, json_string_value(v));
	json_object_foreach((json_t *)json_object_get(env, "vars"), k, v)
	        printf("  var %s=%s\n", k, json_string_value(v));
	json_array_foreach(json_object_get(env, "windows"), i, w)
	        printf("  %s window %s%s\n", ctl_str(w, "type"), ctl_str(w, "text"),
	               json_is_true(json_object_get(w, "open")) ? " [open]" : "");
	printf("  at a window: %s running deployments\n",
	       strcmp(ctl_str(env, "at_window"), "continue") == 0 ? "continue" : "pause");
	if (a != NULL)
		printf("  approval: %lld approver(s), role %s%s, timeout %llds\n",
		       (long long)json_integer_value(json_object_get(a, "approvers")),
		       ctl_str(a, "role"),
		       json_is_true(json_object_get(a, "allow_self")) ? ", self allowed" : "",
		       (long long)(json_integer_value(json_object_get(a, "timeout_ms")) / 1000));
}

static int envs_run(struct ctl *ctl, int argc, char **argv)
{
	static const char *const headers[] = {"ENVIRONMENT", "DEPLOYABLE", "APPROVERS", "WINDOWS",
	                                      NULL};
	static const struct option longopts[] = {
	        {"json", no_argument, NULL, 'j'},
	        {NULL, 0, NULL, 0},
	};
	char esc[256], path[320], n[16], nw[16];
	json_t *reply = NULL, *env;
	struct ctl_table *t;
	bool json = false;
	size_t i;
	int c, code;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c != 'j') {
			ctl_usage(&ctl_cmd_environments, stderr);
			return CTL_EXIT_USAGE;
		}
		json = true;
	}
	if (optind + 1 < argc ||
	    (optind < argc && ctl_escape(argv[optind], esc, sizeof(esc)) != DRV_OK)) {
		ctl_usage(&ctl_cmd_environments, stderr);
		return CTL_EXIT_USAGE;
	}
	if (optind < argc)
		snprintf(path, sizeof(path), "/v1/environments/%s", esc);
	else
		snprintf(path, sizeof(path), "/v1/environments");
	code = ctl_call(ctl, "GET", path, NULL, &reply);
	if (code != CTL_EXIT_OK)
		return code;
	if (json) {
		ctl_print_json(stdout, reply);
	} else if (optind < argc) {
		env_detail(reply);
	} else if ((t = ctl_table_new(headers)) != NULL) {
		json_array_foreach(json_object_get(reply, "environments"), i, env)
		{
			snprintf(n, sizeof(n), "%lld",
			         (long long)json_integer_value(json_object_get(
			                 json_object_get(env, "approval"), "approvers")));
			snprintf(nw, sizeof(nw), "%zu",
			         json_array_size(json_object_get(env, "windows")));
			ctl_table_add(t, ctl_str(env, "name"),
			              json_is_true(json_object_get(env, "deployable")) ? "yes"
			                                                               : "no",
			              n, nw);
		}
		ctl_table_print(t, stdout);
	}
	json_decref(reply);
	return CTL_EXIT_OK;
}

const struct ctl_cmd ctl_cmd_environments = {
        .name = "environments",
        .usage = "environments [--json] [NAME]",
        .summary = "list the environments (or show one): windows, approval, whether a "
                   "deployment may start now",
        .run = envs_run,
};
