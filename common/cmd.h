/*
 * cmd.h: the command line of the daemons (droverd, drover-agent).
 *
 * Each daemon lists its subcommands in one const cmd_table[] and hands argv
 * to drv_cmd_main, as the CLI does with its own table (ctl.h). The forms
 * every daemon has (--config FILE [--check], --version, --help) are a table
 * here, so they read and behave the same in both.
 */
#ifndef DRV_CMD_H
#define DRV_CMD_H

#include <stddef.h>

struct drv_cmd {
	const char *name;
	/* argv[0] is the name; returns the process exit status. */
	int (*run)(int argc, char **argv);
};

struct drv_cmd_prog {
	const char *name;  /* "droverd": printed by --version */
	const char *usage; /* --help to stdout; any misuse to stderr with status 2 */
	/* --config FILE [--check] and --check --config FILE: run or check. */
	int (*run)(const char *config, int check);
	const struct drv_cmd *cmds; /* the subcommands */
	size_t n_cmds;
};

/* Run the entry named argv[1] (a subcommand with (argc - 1, argv + 1), or
 * one of the common forms). Without one, usage to stderr: 2. */
int drv_cmd_main(const struct drv_cmd_prog *p, int argc, char **argv);

#endif
