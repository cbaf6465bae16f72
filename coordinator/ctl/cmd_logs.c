/*
 * cmd_logs.c: drover logs SERVICE [--host H] [--lines N] [--follow]
 * [--json]: a service's own output from its hosts, fetched by the
 * coordinator over the signed link (GET /v1/services/{service}/logs).
 * Several hosts: each line is prefixed with "HOST | ". --follow asks every
 * host again each second for what was written after the last offset, until
 * interrupted. Control characters are replaced before they reach a
 * terminal. Logs may hold secrets: the coordinator decides who may read
 * them (droverd.yaml logs_role).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "ctl.h"
#include "output.h"

#define FOLLOW_EVERY_MS 1000

/* A member as a string, "" when absent (ctl_str prints "-" for tables). */
static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}
#define FOLLOW_HOSTS 64

struct logs_opts {
	const char *service, *host;
	long lines;
	bool follow, json;
};

struct follow_host {
	char id[80];
	long long offset;
};

static int parse(int argc, char **argv, struct logs_opts *o)
{
	static const struct option longopts[] = {
	        {"host", required_argument, NULL, 'H'},
	        {"lines", required_argument, NULL, 'n'},
	        {"follow", no_argument, NULL, 'f'},
	        {"json", no_argument, NULL, 'j'},
	        {NULL, 0, NULL, 0},
	};
	char *end;
	int c;

	o->lines = 100;
	while ((c = getopt_long(argc, argv, "H:n:f", longopts, NULL)) != -1) {
		if (c == 'H') {
			o->host = optarg;
		} else if (c == 'n') {
			o->lines = strtol(optarg, &end, 10);
			if (*end || o->lines < 1 || o->lines > 10000) {
				fprintf(stderr, "drover logs: --lines must be 1..10000\n");
				return -1;
			}
		} else if (c == 'f') {
			o->follow = true;
		} else if (c == 'j') {
			o->json = true;
		} else {
			return -1;
		}
	}
	if (optind + 1 != argc || (o->follow && o->json))
		return -1;
	o->service = argv[optind];
	return 0;
}

/* text, each line prefixed (when prefix), control characters but tabs and
 * newlines replaced; a last line without its newline gets one. */
static void print_text(const char *prefix, const char *text)
{
	bool bol = true;

	for (const char *p = text; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (bol && prefix)
			printf("%s | ", prefix);
		bol = ch == '\n';
		putchar((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f ? '?' : ch);
	}
	if (!bol)
		putchar('\n');
	fflush(stdout);
}

/* Print one answer; the number of hosts that answered with an error. */
static int print_hosts(const json_t *hosts, bool prefix)
{
	const json_t *h;
	size_t i;
	int errors = 0;

	json_array_foreach(hosts, i, h)
	{
		const char *id = jstr(h, "host"), *err = jstr(h, "error");

		if (err[0]) {
			fprintf(stderr, "drover logs: %s: %s\n", id, err);
			errors++;
			continue;
		}
		if (json_is_true(json_object_get(h, "rotated")))
			fprintf(stderr, "drover logs: %s: the log was rotated; from its start\n",
			        id);
		print_text(prefix ? id : NULL, jstr(h, "text"));
	}
	return errors;
}

static int get(const struct ctl *ctl, const struct logs_opts *o, const char *host, long long offset,
               json_t **reply)
{
	char path[600], esc[256], hesc[256] = "";

	if (ctl_escape(o->service, esc, sizeof(esc)) != 0 ||
	    (host && ctl_escape(host, hesc, sizeof(hesc)) != 0)) {
		fprintf(stderr, "drover logs: the service or host name is too long\n");
		return CTL_EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/v1/services/%s/logs?lines=%ld%s%s", esc, o->lines,
	         host ? "&host=" : "", hesc);
	if (offset >= 0)
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "&offset=%lld", offset);
	return ctl_call(ctl, "GET", path, NULL, reply);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* After the first answer: ask each host for what came after its offset. */
static int follow(const struct ctl *ctl, const struct logs_opts *o, const json_t *first)
{
	struct follow_host hs[FOLLOW_HOSTS];
	size_t n = 0, i;
	const json_t *h;
	bool prefix = json_array_size(json_object_get(first, "hosts")) > 1;

	json_array_foreach(json_object_get(first, "hosts"), i, h)
	{
		if (n == FOLLOW_HOSTS || jstr(h, "error")[0])
			continue;
		snprintf(hs[n].id, sizeof(hs[n].id), "%s", jstr(h, "host"));
		hs[n].offset = (long long)json_integer_value(json_object_get(h, "offset"));
		n++;
	}
	for (;;) {
		sleep_ms(FOLLOW_EVERY_MS);
		for (i = 0; i < n; i++) {
			json_t *reply = NULL, *one;
			int code = get(ctl, o, hs[i].id, hs[i].offset, &reply);

			if (code == CTL_EXIT_UNREACHABLE)
				return code; /* explained already */
			one = json_array_get(json_object_get(reply, "hosts"), 0);
			if (code == CTL_EXIT_OK && one != NULL && !jstr(one, "error")[0])
				hs[i].offset = (long long)json_integer_value(
				        json_object_get(one, "offset"));
			if (code == CTL_EXIT_OK)
				print_hosts(json_object_get(reply, "hosts"), prefix);
			json_decref(reply);
		}
	}
}

static int run(struct ctl *ctl, int argc, char **argv)
{
	struct logs_opts o = {0};
	json_t *reply = NULL;
	int code, errors;
	size_t n;

	if (parse(argc, argv, &o) != 0) {
		ctl_usage(&ctl_cmd_logs, stderr);
		return CTL_EXIT_USAGE;
	}
	code = get(ctl, &o, o.host, -1, &reply);
	if (code != CTL_EXIT_OK)
		return code;
	if (o.json) {
		ctl_print_json(stdout, reply);
		json_decref(reply);
		return CTL_EXIT_OK;
	}
	n = json_array_size(json_object_get(reply, "hosts"));
	errors = print_hosts(json_object_get(reply, "hosts"), n > 1);
	if (o.follow && (size_t)errors < n)
		code = follow(ctl, &o, reply);
	else if ((size_t)errors == n)
		code = CTL_EXIT_FAILED;
	json_decref(reply);
	return code;
}

const struct ctl_cmd ctl_cmd_logs = {
        .name = "logs",
        .usage = "logs [--host H] [--lines N] [--follow | --json] SERVICE",
        .summary = "a service's own output from its hosts (--follow: keep printing)",
        .run = run,
};
