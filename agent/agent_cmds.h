/*
 * agent_cmds.h: drover-agent's subcommands (main.c dispatches). Each returns
 * the exit status: 0 success, 1 failure, 2 usage or invalid input.
 */
#ifndef DRV_AGENT_CMDS_H
#define DRV_AGENT_CMDS_H

int agent_cmd_init(int argc, char **argv);        /* agent_init.c */
int agent_cmd_run(const char *config, int check); /* agentd.c */

#endif
