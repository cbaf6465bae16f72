/*
 * main.c: droverd, the coordinator daemon. Parses the command line and hands
 * over to the subcommands (init, run).
 */
#include <stdio.h>
#include <string.h>

#include "cmd_token.h"

static const char usage[] =
        "usage: droverd init --dir DIR [--listen URL] [--api HOST:PORT]\n"
        "       droverd --config FILE [--check]\n"
        "       droverd token create|revoke|list ... (droverd token --help)\n"
        "       droverd --version | --help\n"
        "\n"
        "The drover coordinator: turns deployment plans into signed per-host\n"
        "instructions, sequences tiers, batches, canaries and blue-green switches,\n"
        "and rolls back when health fails. See droverd(8).\n";

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
	fputs(usage, stderr);
	return 2;
}
