/*
 * main.c: droverd, the coordinator daemon. Parses the command line and hands
 * over to the subcommands (commands.h).
 */
#include <stdio.h>

#include "cmd.h"
#include "commands.h"
#include "cmd_token.h"

static const char usage[] =
        "usage: droverd init --dir DIR [--listen URL]... [--api HOST:PORT] [--enroll-token]\n"
        "                    [--api-tls] [--postgres DSN|- [--node NAME]]\n"
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
        "                DIR/admin.token (and DIR/enroll.token with --enroll-token);\n"
        "                --api-tls: the API serves HTTPS with DIR/api.crt (clients pin it);\n"
        "                --postgres: a node of an HA group on that PostgreSQL database\n"
        "                (DSN, or - to read it from stdin), named --node (default: host name)\n"
        "  --config      run the coordinator (--check: validate and exit)\n"
        "  enroll-token  make, revoke or list enrollment tokens; agents presenting a valid\n"
        "                one are accepted (it expires, after --ttl, default 24h)\n"
        "  queue         debug/operator tool: queue a RUN_HOOK instruction for an agent;\n"
        "                a running droverd delivers it within a second\n"
        "  keygen        make a new signing key pair (key rotation)\n"
        "  forget-agent  remove an agent, so its host can enroll again with a new key\n"
        "  token         manage API tokens (viewer, deployer, admin)\n";

/* clang-format off */
static const struct drv_cmd cmd_table[] = {
	{"init", droverd_cmd_init},
	{"enroll-token", droverd_cmd_enroll_token},
	{"queue", droverd_cmd_queue},
	{"keygen", droverd_cmd_keygen},
	{"forget-agent", droverd_cmd_forget_agent},
	{"token", drv_cmd_token},
};
/* clang-format on */

int main(int argc, char **argv)
{
	static const struct drv_cmd_prog prog = {
	        .name = "droverd",
	        .usage = usage,
	        .run = droverd_cmd_run,
	        .cmds = cmd_table,
	        .n_cmds = sizeof(cmd_table) / sizeof(cmd_table[0]),
	};

	return drv_cmd_main(&prog, argc, argv);
}
