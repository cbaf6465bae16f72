/*
 * cmd.c: subcommand dispatch for the daemons (cmd.h).
 */
#include "cmd.h"

#include <stdio.h>
#include <string.h>

int drv_cmd_dispatch(const struct drv_cmd *table, size_t n, int argc, char **argv,
                     const char *usage)
{
	if (argc >= 2) {
		for (size_t i = 0; i < n; i++) {
			if (strcmp(table[i].name, argv[1]) == 0)
				return table[i].run(argc - 1, argv + 1);
		}
	}
	fputs(usage, stderr);
	return 2;
}
