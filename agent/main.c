/*
 * main.c: drover-agent, the per-host agent. Parses the command line and
 * hands over to the subcommands (init, run).
 */
#include <malloc.h>
#include <stdio.h>

#include "agent_cmds.h"
#include "cmd.h"
#include "fetch_helper.h"
#include "run_step.h"
#include "unpack_helper.h"

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

/* clang-format off */
static const struct drv_cmd cmd_table[] = {
	{"init", agent_cmd_init},
	{"run-step", run_step_main},
	{"fetch", fetch_helper_main},
	{"unpack-layer", unpack_helper_main},
};
/* clang-format on */

int main(int argc, char **argv)
{
	static const struct drv_cmd_prog prog = {
	        .name = "drover-agent",
	        .usage = usage,
	        .run = agent_cmd_run,
	        .cmds = cmd_table,
	        .n_cmds = sizeof(cmd_table) / sizeof(cmd_table[0]),
	};

	/* One malloc arena: the agent's threads (link, executor, health,
	 * supervisor) allocate little, and an arena per thread kept ~1.5 MB of
	 * fragmented heap resident (docs/benchmarks.md, agent memory). */
	mallopt(M_ARENA_MAX, 1);
	return drv_cmd_main(&prog, argc, argv);
}
