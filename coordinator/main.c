/*
 * main.c: droverd, the coordinator daemon. Parses the command line and hands
 * over to the subcommands (commands.h).
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "cmd_token.h"

static const char usage[] =
        "usage: droverd init --dir DIR [--listen URL]... [--api HOST:PORT] [--enroll-token]\n"
        "       droverd --config FILE [--check]\n"
        "       droverd enroll-token create NAME --config FILE [--ttl DURATION] [--uses N]\n"
        "                                [--label KEY=VALUE]...\n"
        "       droverd enroll-token revoke NAME --config FILE\n"
        "       droverd enroll-token list --config FILE [--json]\n"
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
        "  enroll-token  make, revoke or list enrollment tokens; agents presenting a valid\n"
        "                one are accepted (it expires, after --ttl, default 24h)\n"
        "  queue         debug/operator tool: queue a RUN_HOOK instruction for an agent;\n"
        "                a running droverd delivers it within a second\n"
        "  keygen        make a new signing key pair (key rotation)\n"
        "  forget-agent  remove an agent, so its host can enroll again with a new key\n"
        "  token         manage API tokens (viewer, deployer, admin)\n";

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "token") == 0)
		return drv_cmd_token(argc - 1, argv + 1);
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("droverd %s\n", DROVER_VERSION);
		return 0;
	}
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		return droverd_cmd_init(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "enroll-token") == 0)
		return droverd_cmd_enroll_token(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "queue") == 0)
		return droverd_cmd_queue(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "forget-agent") == 0)
		return droverd_cmd_forget_agent(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
		return droverd_cmd_keygen(argc - 1, argv + 1);
	if (argc == 3 && strcmp(argv[1], "--config") == 0)
		return droverd_cmd_run(argv[2], 0);
	if (argc == 4 && strcmp(argv[1], "--config") == 0 && strcmp(argv[3], "--check") == 0)
		return droverd_cmd_run(argv[2], 1);
	if (argc == 4 && strcmp(argv[1], "--check") == 0 && strcmp(argv[2], "--config") == 0)
		return droverd_cmd_run(argv[3], 1);
	fputs(usage, stderr);
	return 2;
}
