/*
 * main.c: droverd, the coordinator daemon. Parses the command line and hands
 * over to the subcommands (commands.h).
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "commands.h"
#include "cmd_token.h"

static const char usage[] =
        "usage: droverd init --dir DIR [--listen URL]... [--api HOST:PORT] [--enroll-token]\n"
        "       droverd --config FILE [--check]\n"
        "       droverd enroll-token create NAME --config FILE [--ttl DURATION]\n"
        "       droverd queue --config FILE --agent ID --step STEP_ID [--deployment ID]\n"
        "                     [--ttl DURATION] [--timeout DURATION] -- COMMAND [ARG]...\n"
        "       droverd keygen --out PREFIX\n"
        "       droverd forget-agent ID --config FILE\n"
        "       droverd token create|revoke|list ... (droverd token --help)\n"
        "       droverd --version | --help\n"
        "\n"
        "The drover coordinator: turns deployment plans into signed per-host\n"
        "instructions, sequences tiers, batches, canaries and blue-green switches,\n"
        "and rolls back when health fails. See docs/operations.md.\n"
        "\n"
        "  init          write DIR/droverd.yaml, the signing key pair, TLS material,\n"
        "                DIR/admin.token (and DIR/enroll.token with --enroll-token)\n"
        "  --config      run the coordinator (--check: validate and exit)\n"
        "  enroll-token  make an enrollment token; agents presenting it are accepted\n"
        "  queue         debug/operator tool: queue a RUN_HOOK instruction for an agent;\n"
        "                a running droverd delivers it within a second\n"
        "  keygen        make a new signing key pair (key rotation)\n"
        "  forget-agent  remove an agent, so its host can enroll again with a new key\n"
        "  token         manage API tokens (viewer, deployer, admin)\n";

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
	printf("droverd %s\n", DROVER_VERSION);
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

/* --config FILE [--check] and --check --config FILE: run (or check) the coordinator. */
static int cmd_config(int argc, char **argv)
{
	if (strcmp(argv[0], "--config") == 0 && argc == 2)
		return droverd_cmd_run(argv[1], 0);
	if (strcmp(argv[0], "--config") == 0 && argc == 3 && strcmp(argv[2], "--check") == 0)
		return droverd_cmd_run(argv[1], 1);
	if (strcmp(argv[0], "--check") == 0 && argc == 3 && strcmp(argv[1], "--config") == 0)
		return droverd_cmd_run(argv[2], 1);
	return usage_error();
}

/* clang-format off */
static const struct drv_cmd cmd_table[] = {
	{"init", droverd_cmd_init},
	{"--config", cmd_config},
	{"--check", cmd_config},
	{"enroll-token", droverd_cmd_enroll_token},
	{"queue", droverd_cmd_queue},
	{"keygen", droverd_cmd_keygen},
	{"forget-agent", droverd_cmd_forget_agent},
	{"token", drv_cmd_token},
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
