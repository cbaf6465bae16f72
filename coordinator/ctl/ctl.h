/*
 * ctl.h: the drover CLI's command framework.
 *
 * Every command group lives in its own cmd_NAME.c and exports one
 * const struct ctl_cmd; main.c lists them all in cmd_table[] (add yours
 * there and to CMakeLists.txt). The handler gets the global context (where
 * the coordinator is, the token) and its own argv (argv[0] is the command
 * name; parse options with getopt_long after setting optind = 0), and
 * returns the process exit status:
 *
 *     static int run(struct ctl *ctl, int argc, char **argv) { ... }
 *     const struct ctl_cmd ctl_cmd_agents = {
 *         .name = "agents",
 *         .usage = "agents [--json]\n"
 *                  "agents accept|reject ID",
 *         .summary = "list agents; accept or reject a pending one",
 *         .run = run,
 *     };
 *
 * Talk to the API with client.h (ctl_call: JSON in, JSON out, errors printed
 * and mapped to the exit codes below); print with output.h (tables, --json).
 */
#ifndef DRV_CTL_H
#define DRV_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* Exit status, as docs/operations.md promises (scripts rely on it). */
enum ctl_exit {
	CTL_EXIT_OK = 0,          /* success */
	CTL_EXIT_FAILED = 1,      /* deployment failed or rolled back; server error */
	CTL_EXIT_USAGE = 2,       /* usage error or invalid input (any other 4xx) */
	CTL_EXIT_UNREACHABLE = 3, /* cannot reach or authenticate (refused, 401, 403) */
};

#define CTL_ENV_ADDR       "DROVER_ADDR"
#define CTL_ENV_TOKEN      "DROVER_TOKEN"
#define CTL_ENV_TOKEN_FILE "DROVER_TOKEN_FILE"
#define CTL_ENV_CACERT     "DROVER_CACERT"
#define CTL_ADDRS_MAX      8 /* addresses in --coordinator / DROVER_ADDR (comma-separated) */
/* Must match droverd's default API address (DRV_API_DEFAULT_URL). */
#define CTL_DEFAULT_URL "http://127.0.0.1:7480"

struct ctl {
	char url[512]; /* the first base URL, without a trailing slash (messages) */
	/* every node of an HA group, tried in turn while one cannot be reached */
	char addrs[CTL_ADDRS_MAX][512];
	size_t n_addrs;
	char cacert[512]; /* PEM: a CA or the API's own (pinned) certificate; "" system CAs */
	char token[256];  /* "" when none was given */
	long connect_timeout_s;
	long timeout_s; /* whole request; streams use a stall timeout instead */
	bool verbose;
};

struct ctl_cmd {
	const char *name;
	const char *usage;   /* lines without "drover " in front; "\n" between forms */
	const char *summary; /* one line for drover --help */
	int (*run)(struct ctl *ctl, int argc, char **argv);
};

/* Print "usage: drover <form>" for every form of cmd to f. */
void ctl_usage(const struct ctl_cmd *cmd, FILE *f);

/* True if argv holds --help or -h (before a "--"). */
bool ctl_wants_help(int argc, char **argv);

/* drover deploy --wait's follower (cmd_deploy.c), for converge too: takes
 * the caller's reference to dep; *final is the deployment as it ended
 * (the caller decrefs). Returns the exit status of its final state. */
int ctl_follow_deployment(const struct ctl *ctl, json_t *dep, FILE *out, json_t **final);

/* The operator verbs' request (cmd_verbs.c, for cmd_approve.c too): after
 * the options, argv[optind] must be the one deployment id; POST body (NULL:
 * none) to /v1/deployments/ID/<self's name>. The answer in *dep; the exit
 * status (usage errors printed). */
int ctl_post_verb(const struct ctl *ctl, const struct ctl_cmd *self, int argc, char **argv,
                  const json_t *body, json_t **dep);

extern const struct ctl_cmd ctl_cmd_abort;
extern const struct ctl_cmd ctl_cmd_agents;
extern const struct ctl_cmd ctl_cmd_approve;
extern const struct ctl_cmd ctl_cmd_audit;
extern const struct ctl_cmd ctl_cmd_converge;
extern const struct ctl_cmd ctl_cmd_deploy;
extern const struct ctl_cmd ctl_cmd_drift;
extern const struct ctl_cmd ctl_cmd_deny;
extern const struct ctl_cmd ctl_cmd_enroll;
extern const struct ctl_cmd ctl_cmd_environments;
extern const struct ctl_cmd ctl_cmd_events;
extern const struct ctl_cmd ctl_cmd_history;
extern const struct ctl_cmd ctl_cmd_logs;
extern const struct ctl_cmd ctl_cmd_pause;
extern const struct ctl_cmd ctl_cmd_plan;
extern const struct ctl_cmd ctl_cmd_promote;
extern const struct ctl_cmd ctl_cmd_promote_release;
extern const struct ctl_cmd ctl_cmd_resume;
extern const struct ctl_cmd ctl_cmd_rollback;
extern const struct ctl_cmd ctl_cmd_status;
extern const struct ctl_cmd ctl_cmd_version;

#endif
