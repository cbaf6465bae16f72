/*
 * main.c: drover, the operator CLI. It talks to droverd's HTTP API.
 */
#include <stdio.h>
#include <string.h>

static const char usage[] =
        "usage: drover [--coordinator URL] [--token TOKEN] COMMAND [ARGS]\n"
        "\n"
        "commands:\n"
        "  agents [--json]              list agents\n"
        "  agents accept|reject ID      enroll or refuse a pending agent\n"
        "  plan check FILE              validate a deployment plan\n"
        "  deploy FILE [--wait] [--json]\n"
        "  status [ID] [--json]         show a deployment\n"
        "  history                      list deployments\n"
        "  events [--follow]            show the event stream\n"
        "  pause|resume|promote|abort|rollback ID\n"
        "\n"
        "The address and token also come from DROVER_ADDR and DROVER_TOKEN.\n"
        "Exit status: 0 success, 1 deployment failed or rolled back, 2 usage or\n"
        "invalid input, 3 cannot reach or authenticate to the coordinator.\n";

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("drover %s\n", DROVER_VERSION);
		return 0;
	}
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	fputs(usage, stderr);
	return 2;
}
