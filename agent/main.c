/*
 * main.c: drover-agent, the per-host agent. Parses the command line and
 * hands over to the subcommands (init, run).
 */
#include <stdio.h>
#include <string.h>

#include "agent_cmds.h"
#include "cmd.h"
#include "run_step.h"

static const char usage[] =
        "usage: drover-agent init --dir DIR --coordinator URL --coordinator-key FILE\n"
        "                         --id NAME [--label K=V]... [--tls-ca FILE]\n"
        "                         [--enroll-token-file FILE]\n"
        "       drover-agent --config FILE [--check]\n"
        "       drover-agent --version | --help\n"
        "\n"
        "The drover agent: receives signed instructions from droverd, pulls images,\n"
        "starts and stops services, runs health checks and hooks, and reports back.\n"
        "See drover-agent(8).\n";

static int usage_error(void)
{
	fputs(usage, stderr);
	return 2;
}

static int cmd_version(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return usage_error();
	printf("drover-agent %s\n", DROVER_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return usage_error();
	fputs(usage, stdout);
	return 0;
}

/* --config FILE [--check] and --check --config FILE: run (or check) the agent. */
static int cmd_config(int argc, char **argv)
{
	if (strcmp(argv[0], "--config") == 0 && argc == 2)
		return agent_cmd_run(argv[1], 0);
	if (strcmp(argv[0], "--config") == 0 && argc == 3 && strcmp(argv[2], "--check") == 0)
		return agent_cmd_run(argv[1], 1);
	if (strcmp(argv[0], "--check") == 0 && argc == 3 && strcmp(argv[1], "--config") == 0)
		return agent_cmd_run(argv[2], 1);
	return usage_error();
}

/* clang-format off */
static const struct drv_cmd cmd_table[] = {
	{"--config", cmd_config},
	{"--check", cmd_config},
	{"init", agent_cmd_init},
	{"run-step", run_step_main},
	{"--version", cmd_version},
	{"--help", cmd_help},
	{"-h", cmd_help},
};
/* clang-format on */

int main(int argc, char **argv)
{
	return drv_cmd_dispatch(cmd_table, sizeof(cmd_table) / sizeof(cmd_table[0]), argc, argv,
	                        usage);
}
