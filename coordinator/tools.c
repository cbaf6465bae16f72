/*
 * tools.c: droverd's offline subcommands. They open the database next to a
 * running droverd (SQLite WAL makes that safe) and exit.
 *
 *   enroll-token create NAME   a new enrollment token (printed once; only its
 *                              hash is stored), with expiry, use limit and
 *                              label rules; revoke NAME; list
 *   queue                      debug/operator tool: queue a RUN_HOOK
 *                              instruction; the running daemon notices queued
 *                              work on its next tick (<= 1 s) and delivers it
 *   keygen --out PREFIX        a new signing key pair, for key rotation
 *   forget-agent ID            remove an agent and its queued instructions, so
 *                              its host can enroll again with a new key
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "commands.h"
#include "dconf.h"
#include "dispatch.h"
#include "enroll_rules.h"
#include "err.h"
#include "keys.h"
#include "store.h"
#include "secret.h"
#include "tokens.h"

static int open_store(const char *config, struct droverd_conf *conf, struct store **s)
{
	struct drv_cfg_diag diag;
	int rc = dconf_load(config, conf, &diag);

	if (rc != DRV_OK) {
		drv_cfg_diag_print(&diag);
		return rc;
	}
	rc = store_open(conf->database, s);
	if (rc != DRV_OK) {
		fprintf(stderr, "%s: cannot open the database\n", conf->database);
		dconf_free(conf);
	}
	return rc;
}

/* ---- enroll-token ---- */

#define ENROLL_TTL_DEFAULT_MS (24 * 3600 * 1000LL)

struct enroll_opts {
	const char *config;
	int64_t ttl_ms, max_uses;
	const char *labels[ENROLL_RULES_MAX + 1];
	size_t n_labels;
	bool json;
};

static const char enroll_usage[] =
        "usage: droverd enroll-token create NAME --config FILE [--ttl DURATION] [--uses N]\n"
        "                                [--label KEY=VALUE]...\n"
        "       droverd enroll-token revoke NAME --config FILE\n"
        "       droverd enroll-token list --config FILE [--json]\n";

static int create_token(struct store *s, const char *name, const struct enroll_opts *o)
{
	char tok[DRV_SECRET_MAX], why[160] = "";
	int64_t now = drv_wall_ms();
	struct store_token t = {name, o->ttl_ms > 0 ? now + o->ttl_ms : 0, o->max_uses, NULL};
	char *rules = NULL;
	int rc;

	rc = enroll_rules_parse(o->labels, o->n_labels, &rules, why, sizeof(why));
	if (rc != DRV_OK) {
		fprintf(stderr, "droverd enroll-token: --label: %s\n",
		        why[0] ? why : drv_strerror(rc));
		return rc;
	}
	t.labels = rules;
	rc = store_enroll_token_create(s, &t, now, tok, sizeof(tok));
	if (rc == DRV_OK)
		printf("%s\n", tok);
	else
		fprintf(stderr, "droverd enroll-token: %s\n",
		        rc == DRV_EEXIST ? "a token with that name exists" : drv_strerror(rc));
	memset(tok, 0, sizeof(tok));
	free(rules);
	return rc;
}

static int revoke_token(struct store *s, const char *name)
{
	int rc = store_enroll_token_revoke(s, name, drv_wall_ms());

	if (rc == DRV_OK)
		fprintf(stderr, "enrollment token %s revoked\n", name);
	else
		fprintf(stderr, "droverd enroll-token: %s\n",
		        rc == DRV_ENOENT ? "no token with that name" : drv_strerror(rc));
	return rc;
}

static int list_tokens(struct store *s, bool json)
{
	json_t *arr, *t;
	size_t i;
	int rc = store_enroll_token_list(s, drv_wall_ms(), &arr);

	if (rc != DRV_OK) {
		fprintf(stderr, "droverd enroll-token: cannot list: %s\n", drv_strerror(rc));
		return rc;
	}
	if (json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		printf("%-24s %-8s %-11s %s\n", "NAME", "STATE", "USES", "LABELS");
		json_array_foreach(arr, i, t)
		{
			char uses[32],
			        *labels = json_dumps(json_object_get(t, "labels"), JSON_COMPACT);
			json_int_t max = json_integer_value(json_object_get(t, "max_uses"));

			snprintf(uses, sizeof(uses), "%lld/%s",
			         (long long)json_integer_value(json_object_get(t, "uses")),
			         max > 0 ? "" : "-");
			if (max > 0)
				snprintf(uses + strlen(uses), sizeof(uses) - strlen(uses), "%lld",
				         (long long)max);
			printf("%-24s %-8s %-11s %s\n",
			       json_string_value(json_object_get(t, "name")),
			       json_string_value(json_object_get(t, "state")), uses,
			       labels ? labels : "{}");
			free(labels);
		}
	}
	json_decref(arr);
	return DRV_OK;
}

static int enroll_parse(int argc, char **argv, struct enroll_opts *o)
{
	static const struct option longopts[] = {
	        {"config", required_argument, NULL, 'c'}, {"ttl", required_argument, NULL, 't'},
	        {"uses", required_argument, NULL, 'u'},   {"label", required_argument, NULL, 'l'},
	        {"json", no_argument, NULL, 'j'},         {NULL, 0, NULL, 0}};
	char *end;
	int ch;

	optind = 1;
	o->ttl_ms = ENROLL_TTL_DEFAULT_MS;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 'j': o->json = true; break;
		case 't':
			if (drv_parse_duration_ms(optarg, &o->ttl_ms) != DRV_OK || o->ttl_ms <= 0)
				return DRV_EINVAL;
			break;
		case 'u':
			o->max_uses = strtoll(optarg, &end, 10);
			if (*end != '\0' || o->max_uses < 1 || o->max_uses > 1000000)
				return DRV_EINVAL;
			break;
		case 'l':
			if (o->n_labels >= ENROLL_RULES_MAX)
				return DRV_EINVAL;
			o->labels[o->n_labels++] = optarg;
			break;
		default: return DRV_EINVAL;
		}
	}
	return o->config != NULL ? DRV_OK : DRV_EINVAL;
}

int droverd_cmd_enroll_token(int argc, char **argv)
{
	struct enroll_opts o = {0};
	struct droverd_conf conf;
	const char *verb, *name;
	struct store *s;
	int rc;

	if (enroll_parse(argc, argv, &o) != DRV_OK || argc - optind < 1) {
		fputs(enroll_usage, stderr);
		return 2;
	}
	verb = argv[optind];
	name = argc - optind == 2 ? argv[optind + 1] : NULL;
	if ((strcmp(verb, "list") == 0) != (name == NULL) || argc - optind > 2 ||
	    (strcmp(verb, "create") != 0 && strcmp(verb, "revoke") != 0 &&
	     strcmp(verb, "list") != 0) ||
	    (name != NULL && drv_token_name_check(name) != DRV_OK)) {
		fputs(enroll_usage, stderr);
		if (name != NULL && drv_token_name_check(name) != DRV_OK)
			fprintf(stderr,
			        "droverd enroll-token: a name is 1-64 of A-Z a-z 0-9 . _ @ -\n");
		return 2;
	}
	if (drv_crypto_init() != DRV_OK || open_store(o.config, &conf, &s) != DRV_OK)
		return 1;
	if (strcmp(verb, "create") == 0)
		rc = create_token(s, name, &o);
	else if (strcmp(verb, "revoke") == 0)
		rc = revoke_token(s, name);
	else
		rc = list_tokens(s, o.json);
	store_close(s);
	dconf_free(&conf);
	return rc == DRV_OK ? 0 : 1;
}

/* ---- queue ---- */

struct queue_opts {
	const char *config, *agent, *step, *deployment;
	int64_t ttl_ms, timeout_ms;
	char **run;
	size_t n_run;
};

static int queue_parse(int argc, char **argv, struct queue_opts *o)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
	                                         {"agent", required_argument, NULL, 'a'},
	                                         {"step", required_argument, NULL, 's'},
	                                         {"deployment", required_argument, NULL, 'd'},
	                                         {"ttl", required_argument, NULL, 't'},
	                                         {"timeout", required_argument, NULL, 'T'},
	                                         {NULL, 0, NULL, 0}};
	int ch;

	optind = 1;
	o->timeout_ms = 30000;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 'a': o->agent = optarg; break;
		case 's': o->step = optarg; break;
		case 'd': o->deployment = optarg; break;
		case 't':
			if (drv_parse_duration_ms(optarg, &o->ttl_ms) != DRV_OK)
				return DRV_EINVAL;
			break;
		case 'T':
			if (drv_parse_duration_ms(optarg, &o->timeout_ms) != DRV_OK)
				return DRV_EINVAL;
			break;
		default: return DRV_EINVAL;
		}
	}
	o->run = argv + optind;
	o->n_run = (size_t)(argc - optind);
	if (o->config == NULL || o->agent == NULL || o->step == NULL || o->n_run == 0)
		return DRV_EINVAL;
	return DRV_OK;
}

static int queue_one(const struct queue_opts *o, struct store *s, const struct drv_keypair *kp,
                     int64_t default_ttl)
{
	Drover__Hook hook = DROVER__HOOK__INIT;
	struct dispatch_instr in = {0};
	uint64_t seq = 0;
	int rc;

	hook.name = (char *)o->step;
	hook.run = o->run;
	hook.n_run = o->n_run;
	hook.timeout_ms = (uint32_t)o->timeout_ms;
	in.agent_id = o->agent;
	in.step_id = o->step;
	in.deployment_id = o->deployment;
	in.action = DROVER__ACTION__ACTION_RUN_HOOK;
	in.hook = &hook;
	in.ttl_ms = o->ttl_ms;
	rc = dispatch_enqueue(s, kp, &in, drv_wall_ms(), default_ttl, &seq);
	if (rc == DRV_OK || rc == DRV_EEXIST)
		printf("%s agent=%s seq=%llu step=%s\n", rc == DRV_OK ? "queued" : "already-queued",
		       o->agent, (unsigned long long)seq, o->step);
	else
		fprintf(stderr, "droverd queue: %s: %s\n", o->agent,
		        rc == DRV_ESTATE ? "agent is not accepted" : drv_strerror(rc));
	return rc == DRV_EEXIST ? DRV_OK : rc;
}

int droverd_cmd_queue(int argc, char **argv)
{
	struct queue_opts o = {0};
	struct droverd_conf conf;
	struct drv_keypair kp;
	struct store *s;
	int rc;

	if (queue_parse(argc, argv, &o) != DRV_OK) {
		fprintf(stderr, "usage: droverd queue --config FILE --agent ID --step STEP_ID "
		                "[--deployment ID] [--ttl DURATION] [--timeout DURATION] -- "
		                "COMMAND [ARG]...\n");
		return 2;
	}
	if (drv_crypto_init() != DRV_OK || open_store(o.config, &conf, &s) != DRV_OK)
		return 1;
	rc = drv_keypair_load(conf.signing_key, &kp);
	if (rc == DRV_OK)
		rc = queue_one(&o, s, &kp, conf.instruction_ttl_ms);
	else
		fprintf(stderr, "%s: %s\n", conf.signing_key, drv_strerror(rc));
	drv_keypair_wipe(&kp);
	store_close(s);
	dconf_free(&conf);
	return rc == DRV_OK ? 0 : rc == DRV_EINVAL || rc == DRV_ENODIGEST ? 2 : 1;
}

/* ---- keygen ---- */

int droverd_cmd_keygen(int argc, char **argv)
{
	char secret[4096], pub[4096];
	struct drv_keypair kp;
	int rc;

	if (argc != 3 || strcmp(argv[1], "--out") != 0 || strlen(argv[2]) > 4000) {
		fprintf(stderr, "usage: droverd keygen --out PREFIX   (writes PREFIX.key, "
		                "PREFIX.pub)\n");
		return 2;
	}
	snprintf(secret, sizeof(secret), "%s.key", argv[2]);
	snprintf(pub, sizeof(pub), "%s.pub", argv[2]);
	if (drv_crypto_init() != DRV_OK || access(secret, F_OK) == 0) {
		fprintf(stderr, "droverd keygen: %s exists\n", secret);
		return 1;
	}
	rc = drv_keypair_generate(&kp);
	if (rc == DRV_OK)
		rc = drv_keypair_save(&kp, secret, pub);
	if (rc == DRV_OK)
		printf("%s %s key_id=%s\n", secret, pub, kp.id);
	drv_keypair_wipe(&kp);
	return rc == DRV_OK ? 0 : 1;
}

/* ---- forget-agent ---- */

int droverd_cmd_forget_agent(int argc, char **argv)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
	                                         {NULL, 0, NULL, 0}};
	const char *config = NULL;
	struct droverd_conf conf;
	struct store *s;
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch != 'c')
			return 2;
		config = optarg;
	}
	if (config == NULL || argc - optind != 1) {
		fprintf(stderr, "usage: droverd forget-agent ID --config FILE\n");
		return 2;
	}
	if (open_store(config, &conf, &s) != DRV_OK)
		return 1;
	rc = store_agent_delete(s, argv[optind]);
	if (rc == DRV_OK)
		printf("forgot agent %s: it can enroll again (with a new key)\n", argv[optind]);
	else
		fprintf(stderr, "droverd forget-agent: %s: %s\n", argv[optind],
		        rc == DRV_ENOENT ? "no such agent" : drv_strerror(rc));
	store_close(s);
	dconf_free(&conf);
	return rc == DRV_OK ? 0 : 1;
}
