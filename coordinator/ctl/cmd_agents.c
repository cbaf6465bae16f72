/* cmd_agents.c: drover agents: list agents; accept, reject or relabel one
 * (admin). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "ctl.h"
#include "output.h"

/* "tier=core,zone=a" from a labels object. */
static void labels_text(const json_t *labels, char *out, size_t cap)
{
	const char *k;
	json_t *v;
	size_t n = 0;

	out[0] = '\0';
	json_object_foreach((json_t *)labels, k, v)
	{
		int w = snprintf(out + n, cap - n, "%s%s=%s", n ? "," : "", k,
		                 json_is_string(v) ? json_string_value(v) : "?");
		if (w < 0 || (size_t)w >= cap - n)
			break;
		n += (size_t)w;
	}
}

static void print_table(const json_t *agents)
{
	static const char *const headers[] = {"ID",   "STATE",   "LAST SEEN", "LABELS",
	                                      "HOST", "VERSION", "KEY",       NULL};
	struct ctl_table *t = ctl_table_new(headers);
	char seen[32], labels[256];
	const json_t *a;
	size_t i;

	if (t == NULL)
		return;
	json_array_foreach(agents, i, a)
	{
		ctl_fmt_time(json_integer_value(json_object_get(a, "last_seen_ms")), seen);
		labels_text(json_object_get(a, "labels"), labels, sizeof(labels));
		if (json_is_object(json_object_get(a, "proposed_labels")) &&
		    strlen(labels) + 12 < sizeof(labels))
			strcat(labels, " (relabel?)");
		ctl_table_add(t, ctl_str(a, "id"), ctl_str(a, "state"), seen,
		              labels[0] ? labels : "-",
		              ctl_str(json_object_get(a, "facts"), "hostname"),
		              ctl_str(a, "agent_version"), ctl_str(a, "key_id"));
	}
	ctl_table_print(t, stdout);
}

static int list(struct ctl *ctl, bool json)
{
	json_t *reply = NULL;
	int code = ctl_call(ctl, "GET", "/v1/agents", NULL, &reply);

	if (code != CTL_EXIT_OK)
		return code;
	if (json)
		ctl_print_json(stdout, json_object_get(reply, "agents"));
	else
		print_table(json_object_get(reply, "agents"));
	json_decref(reply);
	return CTL_EXIT_OK;
}

static int set_status(struct ctl *ctl, const char *verb, const char *id, bool json)
{
	char path[600], esc[300];
	json_t *reply = NULL;
	int code;

	if (ctl_escape(id, esc, sizeof(esc)) != 0) {
		fprintf(stderr, "drover agents: agent id too long\n");
		return CTL_EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/v1/agents/%s/%s", esc, verb);
	code = ctl_call(ctl, "POST", path, NULL, &reply);
	if (code != CTL_EXIT_OK)
		return code;
	if (json) {
		ctl_print_json(stdout, reply);
	} else {
		char labels[256];

		labels_text(json_object_get(reply, "labels"), labels, sizeof(labels));
		printf("agent %s %s (state %s, labels %s, key %s)\n", id,
		       strcmp(verb, "accept") == 0   ? "accepted"
		       : strcmp(verb, "reject") == 0 ? "rejected"
		                                     : "relabeled",
		       ctl_str(reply, "state"), labels[0] ? labels : "-", ctl_str(reply, "key_id"));
	}
	json_decref(reply);
	return CTL_EXIT_OK;
}

static int run(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"json", no_argument, NULL, 'j'},
	        {NULL, 0, NULL, 0},
	};
	bool json = false;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c != 'j') {
			ctl_usage(&ctl_cmd_agents, stderr);
			return CTL_EXIT_USAGE;
		}
		json = true;
	}
	if (optind == argc)
		return list(ctl, json);
	if (argc - optind == 2 &&
	    (strcmp(argv[optind], "accept") == 0 || strcmp(argv[optind], "reject") == 0 ||
	     strcmp(argv[optind], "relabel") == 0))
		return set_status(ctl, argv[optind], argv[optind + 1], json);
	ctl_usage(&ctl_cmd_agents, stderr);
	return CTL_EXIT_USAGE;
}

const struct ctl_cmd ctl_cmd_agents = {
        .name = "agents",
        .usage = "agents [--json]\n"
                 "agents accept|reject ID [--json]\n"
                 "agents relabel ID [--json]   (apply the labels the agent proposed)",
        .summary = "list agents; accept, reject or relabel one (admin)",
        .run = run,
};
