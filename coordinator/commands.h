/*
 * commands.h: droverd's subcommands, one file each (main.c dispatches).
 * Each takes the arguments after its name and returns the exit status:
 * 0 success, 1 failure, 2 usage or invalid input.
 */
#ifndef DRV_COMMANDS_H
#define DRV_COMMANDS_H

int droverd_cmd_init(int argc, char **argv);         /* init.c */
int droverd_cmd_run(const char *config, int check);  /* daemon.c */
int droverd_cmd_enroll_token(int argc, char **argv); /* tools.c */
int droverd_cmd_queue(int argc, char **argv);        /* tools.c */
int droverd_cmd_keygen(int argc, char **argv);       /* tools.c */
int droverd_cmd_forget_agent(int argc, char **argv); /* tools.c */

#endif
