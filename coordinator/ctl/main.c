/*
 * main.c: drover, the operator CLI. It talks to droverd's HTTP API.
 *
 * Global options come before the command; each command parses its own.
 * The coordinator's address defaults to CTL_DEFAULT_URL (droverd's default
 * API address, 127.0.0.1:7480).
 */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomicfile.h"
#include "ctl.h"
#include "err.h"
#include "log.h"

/* Every command group, in the order drover --help lists them. */
/* clang-format off */
static const struct ctl_cmd *const cmd_table[] = {
        &ctl_cmd_agents,
        &ctl_cmd_enroll,
        &ctl_cmd_plan,
        &ctl_cmd_deploy,
        &ctl_cmd_status,
        &ctl_cmd_history,
        &ctl_cmd_pause,
        &ctl_cmd_resume,
        &ctl_cmd_promote,
        &ctl_cmd_promote_release,
        &ctl_cmd_abort,
        &ctl_cmd_rollback,
        &ctl_cmd_approve,
        &ctl_cmd_deny,
        &ctl_cmd_environments,
        &ctl_cmd_logs,
        &ctl_cmd_drift,
        &ctl_cmd_converge,
        &ctl_cmd_events,
        &ctl_cmd_audit,
        &ctl_cmd_version,
};
/* clang-format on */

#define N_CMDS (sizeof(cmd_table) / sizeof(cmd_table[0]))

static void help(FILE *f)
{
	fputs("usage: drover [--coordinator URL[,URL...]] [--token TOKEN | --token-file FILE] "
	      "[--cacert PEM] [-v] COMMAND [ARGS]\n\ncommands:\n",
	      f);
	for (size_t i = 0; i < N_CMDS; i++)
		fprintf(f, "  %-10s %s\n", cmd_table[i]->name, cmd_table[i]->summary);
	fputs("\n"
	      "`drover COMMAND --help` shows a command's usage.\n"
	      "The address comes from --coordinator or DROVER_ADDR (default " CTL_DEFAULT_URL "):\n"
	      "several, comma-separated, are tried in turn (an HA group); a follower's redirect\n"
	      "to the leader is followed. --cacert or DROVER_CACERT: the CA (or the pinned\n"
	      "certificate) of an https:// API.\n"
	      "the token from --token, --token-file, DROVER_TOKEN or DROVER_TOKEN_FILE.\n"
	      "Exit status: 0 success, 1 deployment failed or rolled back (or a server error),\n"
	      "2 usage or invalid input, 3 cannot reach or authenticate to the coordinator.\n",
	      f);
}

void ctl_usage(const struct ctl_cmd *cmd, FILE *f)
{
	const char *s = cmd->usage;

	for (int first = 1; *s; first = 0) {
		size_t n = strcspn(s, "\n");
		fprintf(f, "%s drover %.*s\n", first ? "usage:" : "      ", (int)n, s);
		s += n + (s[n] == '\n');
	}
}

bool ctl_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

static int set_one_url(char out[512], const char *url, size_t len)
{
	size_t n;

	if (len >= 500)
		return DRV_EINVAL;
	if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)
		snprintf(out, 512, "%.*s", (int)len, url);
	else
		snprintf(out, 512, "http://%.*s", (int)len, url);
	n = strlen(out);
	while (n > 0 && out[n - 1] == '/')
		out[--n] = '\0';
	return n > 7 && strpbrk(out, " \t\r\n") == NULL ? DRV_OK : DRV_EINVAL;
}

/* One address, or several separated by commas (the nodes of an HA group). */
static int set_url(struct ctl *ctl, const char *urls)
{
	const char *p = urls;

	ctl->n_addrs = 0;
	for (;;) {
		size_t len = strcspn(p, ",");
		if (ctl->n_addrs == CTL_ADDRS_MAX ||
		    set_one_url(ctl->addrs[ctl->n_addrs], p, len) != DRV_OK)
			return DRV_EINVAL;
		ctl->n_addrs++;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	snprintf(ctl->url, sizeof(ctl->url), "%s", ctl->addrs[0]);
	return DRV_OK;
}

static int read_token_file(struct ctl *ctl, const char *path)
{
	char *text;
	size_t len;

	if (drv_read_file(path, 4096, &text, &len) != DRV_OK) {
		fprintf(stderr, "drover: cannot read the token file %s\n", path);
		return DRV_EIO;
	}
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
		text[--len] = '\0';
	snprintf(ctl->token, sizeof(ctl->token), "%s", text);
	free(text);
	return DRV_OK;
}

struct globals {
	const char *url, *token, *token_file, *cacert;
	bool verbose;
};

/* Options before the command. Returns the index of the command, or -1
 * (help/version answered: *code set). */
static int parse_globals(int argc, char **argv, struct globals *g, int *code)
{
	static const struct option longopts[] = {
	        {"coordinator", required_argument, NULL, 'c'},
	        {"token", required_argument, NULL, 't'},
	        {"token-file", required_argument, NULL, 'f'},
	        {"cacert", required_argument, NULL, 'C'},
	        {"verbose", no_argument, NULL, 'v'},
	        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "+c:t:f:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': g->url = optarg; break;
		case 't': g->token = optarg; break;
		case 'C': g->cacert = optarg; break;
		case 'f': g->token_file = optarg; break;
		case 'v': g->verbose = true; break;
		case 'V':
			printf("drover %s\n", DROVER_VERSION);
			*code = 0;
			return -1;
		case 'h':
			help(stdout);
			*code = 0;
			return -1;
		default:
			help(stderr);
			*code = CTL_EXIT_USAGE;
			return -1;
		}
	}
	if (optind >= argc) {
		help(stderr);
		*code = CTL_EXIT_USAGE;
		return -1;
	}
	return optind;
}

/* The token, first match wins: --token, --token-file, DROVER_TOKEN,
 * DROVER_TOKEN_FILE (drover(1), docs/operations.md). */
static int setup(struct ctl *ctl, const struct globals *g)
{
	const char *url = g->url ? g->url : getenv(CTL_ENV_ADDR);
	const char *env_token = getenv(CTL_ENV_TOKEN);
	const char *token = g->token ? g->token : env_token;
	const char *file = g->token_file;

	if (!g->token && !file && !(env_token && env_token[0]))
		file = getenv(CTL_ENV_TOKEN_FILE);

	ctl->connect_timeout_s = 5;
	ctl->timeout_s = 30;
	ctl->verbose = g->verbose;
	const char *cacert = g->cacert ? g->cacert : getenv(CTL_ENV_CACERT);

	if (set_url(ctl, url && url[0] ? url : CTL_DEFAULT_URL) != DRV_OK) {
		fprintf(stderr, "drover: bad coordinator address \"%s\"\n", url);
		return DRV_EINVAL;
	}
	if (cacert != NULL && cacert[0] != '\0') {
		if (access(cacert, R_OK) != 0) {
			fprintf(stderr, "drover: cannot read the CA certificate %s\n", cacert);
			return DRV_EINVAL;
		}
		snprintf(ctl->cacert, sizeof(ctl->cacert), "%s", cacert);
	}
	if (g->token || !file || !file[0]) {
		snprintf(ctl->token, sizeof(ctl->token), "%s", token ? token : "");
		return DRV_OK;
	}
	return read_token_file(ctl, file);
}

static const struct ctl_cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < N_CMDS; i++) {
		if (strcmp(cmd_table[i]->name, name) == 0)
			return cmd_table[i];
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct globals g = {0};
	struct ctl ctl = {0};
	const struct ctl_cmd *cmd;
	int code = 0, at, rc;

	at = parse_globals(argc, argv, &g, &code);
	if (at < 0)
		return code;
	if (strcmp(argv[at], "help") == 0) {
		cmd = at + 1 < argc ? find_cmd(argv[at + 1]) : NULL;
		if (cmd)
			ctl_usage(cmd, stdout);
		else
			help(stdout);
		return 0;
	}
	cmd = find_cmd(argv[at]);
	if (!cmd) {
		fprintf(stderr, "drover: unknown command \"%s\" (drover --help lists them)\n",
		        argv[at]);
		return CTL_EXIT_USAGE;
	}
	if (ctl_wants_help(argc - at, argv + at)) {
		ctl_usage(cmd, stdout);
		return 0;
	}
	if (setup(&ctl, &g) != DRV_OK)
		return CTL_EXIT_USAGE;
	drv_log_set_level(g.verbose ? DRV_LOG_DEBUG : DRV_LOG_WARN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	optind = 0;
	rc = cmd->run(&ctl, argc - at, argv + at);
	curl_global_cleanup();
	return rc;
}
