/* cmd_enroll.c: drover enroll-tokens: list, create or revoke enrollment
 * tokens (admin). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "client.h"
#include "ctl.h"
#include "err.h"
#include "output.h"

#define RULES_MAX 64

static int list(struct ctl *ctl, bool json)
{
	static const char *const headers[] = {"NAME", "STATE", "USES", "EXPIRES", "LABELS", NULL};
	json_t *reply = NULL, *t;
	struct ctl_table *tab;
	int code = ctl_call(ctl, "GET", "/v1/enroll-tokens", NULL, &reply);
	size_t i;

	if (code != CTL_EXIT_OK)
		return code;
	if (json) {
		ctl_print_json(stdout, json_object_get(reply, "tokens"));
		json_decref(reply);
		return CTL_EXIT_OK;
	}
	tab = ctl_table_new(headers);
	json_array_foreach(json_object_get(reply, "tokens"), i, t)
	{
		char uses[48], exp[32],
		        *labels = json_dumps(json_object_get(t, "labels"), JSON_COMPACT);
		json_int_t max = json_integer_value(json_object_get(t, "max_uses"));
		json_int_t e = json_integer_value(json_object_get(t, "expires_ms"));

		snprintf(uses, sizeof(uses), "%lld/%s",
		         (long long)json_integer_value(json_object_get(t, "uses")), max ? "" : "-");
		if (max)
			snprintf(uses + strlen(uses), sizeof(uses) - strlen(uses), "%lld",
			         (long long)max);
		if (e > 0)
			ctl_fmt_time(e, exp);
		else
			snprintf(exp, sizeof(exp), "never");
		if (tab != NULL)
			ctl_table_add(tab, ctl_str(t, "name"), ctl_str(t, "state"), uses, exp,
			              labels ? labels : "{}");
		free(labels);
	}
	if (tab != NULL)
		ctl_table_print(tab, stdout);
	json_decref(reply);
	return CTL_EXIT_OK;
}

static int create(struct ctl *ctl, const char *name, int64_t ttl, long uses, json_t *labels,
                  bool json)
{
	json_t *body = json_pack("{s:s, s:O}", "name", name, "labels", labels), *reply = NULL;
	int code;

	if (body == NULL)
		return CTL_EXIT_FAILED;
	if (ttl > 0)
		json_object_set_new(body, "ttl_ms", json_integer(ttl));
	if (uses > 0)
		json_object_set_new(body, "max_uses", json_integer(uses));
	code = ctl_call(ctl, "POST", "/v1/enroll-tokens", body, &reply);
	json_decref(body);
	if (code != CTL_EXIT_OK)
		return code;
	if (json)
		ctl_print_json(stdout, reply);
	else
		printf("%s\n", ctl_str(reply, "token"));
	fprintf(stderr, "enrollment token %s created; it is shown only this once\n", name);
	json_decref(reply);
	return CTL_EXIT_OK;
}

static int revoke(struct ctl *ctl, const char *name, bool json)
{
	char path[300], esc[200];
	json_t *reply = NULL;
	int code;

	if (ctl_escape(name, esc, sizeof(esc)) != 0) {
		fprintf(stderr, "drover enroll-tokens: name too long\n");
		return CTL_EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/v1/enroll-tokens/%s/revoke", esc);
	code = ctl_call(ctl, "POST", path, NULL, &reply);
	if (code != CTL_EXIT_OK)
		return code;
	if (json)
		ctl_print_json(stdout, reply);
	else
		printf("enrollment token %s revoked\n", name);
	json_decref(reply);
	return CTL_EXIT_OK;
}

static int run(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"json", no_argument, NULL, 'j'},
	        {"ttl", required_argument, NULL, 't'},
	        {"uses", required_argument, NULL, 'u'},
	        {"label", required_argument, NULL, 'l'},
	        {NULL, 0, NULL, 0},
	};
	json_t *labels = json_array();
	int64_t ttl = 0;
	long uses = 0;
	bool json = false;
	int c, code = CTL_EXIT_USAGE;
	char *end;

	optind = 0;
	while (labels != NULL && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'j') {
			json = true;
		} else if (c == 't' && drv_parse_duration_ms(optarg, &ttl) == DRV_OK && ttl > 0) {
		} else if (c == 'u' && (uses = strtol(optarg, &end, 10)) > 0 && *end == '\0') {
		} else if (c == 'l' && json_array_size(labels) < RULES_MAX) {
			json_array_append_new(labels, json_string(optarg));
		} else {
			goto usage;
		}
	}
	if (optind == argc || (argc - optind == 1 && strcmp(argv[optind], "list") == 0))
		code = list(ctl, json);
	else if (argc - optind == 2 && strcmp(argv[optind], "create") == 0)
		code = create(ctl, argv[optind + 1], ttl, uses, labels, json);
	else if (argc - optind == 2 && strcmp(argv[optind], "revoke") == 0)
		code = revoke(ctl, argv[optind + 1], json);
	else
		goto usage;
	json_decref(labels);
	return code;
usage:
	json_decref(labels);
	ctl_usage(&ctl_cmd_enroll, stderr);
	return CTL_EXIT_USAGE;
}

const struct ctl_cmd ctl_cmd_enroll = {
        .name = "enroll-tokens",
        .usage = "enroll-tokens [list] [--json]\n"
                 "enroll-tokens create NAME [--ttl DURATION] [--uses N] [--label KEY=VALUE]... "
                 "[--json]\n"
                 "enroll-tokens revoke NAME",
        .summary = "list, create or revoke enrollment tokens (admin)",
        .run = run,
};
