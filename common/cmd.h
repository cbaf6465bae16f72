/*
 * cmd.h: subcommand tables for the daemons (droverd, drover-agent).
 *
 * Each daemon lists its subcommands in one const cmd_table[] and hands
 * argv to drv_cmd_dispatch, as the CLI does with its own table (ctl.h).
 * Options that select a mode ("--config", "--version") are entries too.
 */
#ifndef DRV_CMD_H
#define DRV_CMD_H

#include <stddef.h>

struct drv_cmd {
	const char *name;
	/* argv[0] is the name; returns the process exit status. */
	int (*run)(int argc, char **argv);
};

/* Run the entry of table named argv[1] with (argc - 1, argv + 1). Without
 * one, print usage to stderr and return 2. */
int drv_cmd_dispatch(const struct drv_cmd *table, size_t n, int argc, char **argv,
                     const char *usage);

#endif
