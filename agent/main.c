/*
 * main.c: drover-agent, the per-host agent. Parses the command line and
 * hands over to the subcommands (init, run).
 */
#include <stdio.h>
#include <string.h>

#include "agent_cmds.h"
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

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "run-step") == 0)
		return run_step_main(argc - 1, argv + 1);
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("drover-agent %s\n", DROVER_VERSION);
		return 0;
	}
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		return agent_cmd_init(argc - 1, argv + 1);
	if (argc == 3 && strcmp(argv[1], "--config") == 0)
		return agent_cmd_run(argv[2], 0);
	if (argc == 4 && strcmp(argv[1], "--config") == 0 && strcmp(argv[3], "--check") == 0)
		return agent_cmd_run(argv[2], 1);
	if (argc == 4 && strcmp(argv[1], "--check") == 0 && strcmp(argv[2], "--config") == 0)
		return agent_cmd_run(argv[3], 1);
	fputs(usage, stderr);
	return 2;
}
