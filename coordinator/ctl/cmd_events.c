/* cmd_events.c: drover events: the coordinator's event stream. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "ctl.h"
#include "output.h"

struct events_opts {
	bool follow, json;
	const char *deployment, *agent, *kind;
	long tail;
	long long since;
};

static int print_event(const struct ctl_event *ev, void *ctx)
{
	const struct events_opts *o = ctx;
	const json_t *d = ev->data;
	char when[32], *data;

	if (o->json) {
		if (d)
			ctl_print_json_line(stdout, d);
		else
			printf("%s\n", ev->raw);
		fflush(stdout);
		return 0;
	}
	ctl_fmt_time(json_integer_value(json_object_get(d, "at_ms")), when);
	data = json_dumps(json_object_get(d, "data"), JSON_COMPACT);
	printf("%s  %-6lld %-20s", when, (long long)ev->id, ev->kind);
	if (json_string_length(json_object_get(d, "deployment_id")))
		printf(" deployment=%s", ctl_str(d, "deployment_id"));
	if (json_string_length(json_object_get(d, "agent_id")))
		printf(" agent=%s", ctl_str(d, "agent_id"));
	if (data && strcmp(data, "{}") != 0)
		printf(" %s", data);
	putchar('\n');
	fflush(stdout);
	free(data);
	return 0;
}

static int add_arg(char *path, size_t cap, const char *name, const char *value)
{
	char esc[768];
	size_t n = strlen(path);

	if (!value || ctl_escape(value, esc, sizeof(esc)) != 0)
		return value ? -1 : 0;
	return snprintf(path + n, cap - n, "&%s=%s", name, esc) >= (int)(cap - n) ? -1 : 0;
}

static int parse(int argc, char **argv, struct events_opts *o)
{
	static const struct option longopts[] = {
	        {"follow", no_argument, NULL, 'f'},
	        {"json", no_argument, NULL, 'j'},
	        {"deployment", required_argument, NULL, 'd'},
	        {"agent", required_argument, NULL, 'a'},
	        {"kind", required_argument, NULL, 'k'},
	        {"tail", required_argument, NULL, 'n'},
	        {"since", required_argument, NULL, 's'},
	        {NULL, 0, NULL, 0},
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "fn:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o->follow = true; break;
		case 'j': o->json = true; break;
		case 'd': o->deployment = optarg; break;
		case 'a': o->agent = optarg; break;
		case 'k': o->kind = optarg; break;
		case 'n':
			o->tail = strtol(optarg, &end, 10);
			if (*end || o->tail < 0 || o->tail > 1000)
				return -1;
			break;
		case 's':
			o->since = strtoll(optarg, &end, 10);
			if (*end || o->since < 0)
				return -1;
			break;
		default: return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

static int run(struct ctl *ctl, int argc, char **argv)
{
	struct events_opts o = {.tail = -1, .since = -1};
	char path[2048];
	int64_t last_id;

	if (parse(argc, argv, &o) != 0) {
		ctl_usage(&ctl_cmd_events, stderr);
		return CTL_EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/v1/events?follow=%d", o.follow ? 1 : 0);
	if (o.tail >= 0)
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "&tail=%ld", o.tail);
	if (add_arg(path, sizeof(path), "deployment", o.deployment) != 0 ||
	    add_arg(path, sizeof(path), "agent", o.agent) != 0 ||
	    add_arg(path, sizeof(path), "kind", o.kind) != 0) {
		fprintf(stderr, "drover events: a filter is too long\n");
		return CTL_EXIT_USAGE;
	}
	/* --since is sent as Last-Event-ID: the same header resumes after a break. */
	last_id = o.since > 0 ? o.since : 0;
	if (o.since == 0)
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "&since=0");
	return ctl_events_stream(ctl, path, o.follow, &last_id, print_event, &o);
}

const struct ctl_cmd ctl_cmd_events = {
        .name = "events",
        .usage =
                "events [--follow] [--json] [--tail N] [--since ID] [--deployment ID] [--agent ID] "
                "[--kind KIND]",
        .summary = "show recent events; --follow keeps watching (resumes after a break)",
        .run = run,
};
