/*
 * cmd.c: the daemons' command line (cmd.h).
 */
#include "cmd.h"

#include <stdio.h>
#include <string.h>

static int usage_error(const struct drv_cmd_prog *p)
{
	fputs(p->usage, stderr);
	return 2;
}

static int cmd_version(const struct drv_cmd_prog *p, int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return usage_error(p);
	printf("%s %s\n", p->name, DROVER_VERSION);
	return 0;
}

static int cmd_help(const struct drv_cmd_prog *p, int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return usage_error(p);
	fputs(p->usage, stdout);
	return 0;
}

static int cmd_config(const struct drv_cmd_prog *p, int argc, char **argv)
{
	if (strcmp(argv[0], "--config") == 0 && argc == 2)
		return p->run(argv[1], 0);
	if (strcmp(argv[0], "--config") == 0 && argc == 3 && strcmp(argv[2], "--check") == 0)
		return p->run(argv[1], 1);
	if (strcmp(argv[0], "--check") == 0 && argc == 3 && strcmp(argv[1], "--config") == 0)
		return p->run(argv[2], 1);
	return usage_error(p);
}

/* clang-format off */
static const struct {
	const char *name;
	int (*run)(const struct drv_cmd_prog *p, int argc, char **argv);
} common_table[] = {
	{"--config", cmd_config},
	{"--check", cmd_config},
	{"--version", cmd_version},
	{"--help", cmd_help},
	{"-h", cmd_help},
};
/* clang-format on */

int drv_cmd_main(const struct drv_cmd_prog *p, int argc, char **argv)
{
	if (argc < 2)
		return usage_error(p);
	for (size_t i = 0; i < p->n_cmds; i++) {
		if (strcmp(p->cmds[i].name, argv[1]) == 0)
			return p->cmds[i].run(argc - 1, argv + 1);
	}
	for (size_t i = 0; i < sizeof(common_table) / sizeof(common_table[0]); i++) {
		if (strcmp(common_table[i].name, argv[1]) == 0)
			return common_table[i].run(p, argc - 1, argv + 1);
	}
	return usage_error(p);
}
