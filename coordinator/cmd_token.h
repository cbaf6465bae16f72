/*
 * cmd_token.h: `droverd token create|revoke|list`, the operator's way to
 * manage API tokens on the coordinator host (it opens the database
 * directly, so it works without a running droverd).
 *
 *     droverd token create --role viewer|deployer|admin --name NAME [--config FILE | --db PATH]
 *     droverd token revoke NAME [--config FILE | --db PATH]
 *     droverd token list [--json] [--config FILE | --db PATH]
 *
 * The database is PATH, or the one FILE names (`database:` in droverd.yaml),
 * or /var/lib/drover/droverd.db. create prints the token once
 * on stdout and nothing else there. Exit status: 0 ok, 1 failure, 2 usage.
 */
#ifndef DRV_CMD_TOKEN_H
#define DRV_CMD_TOKEN_H

#define DRV_COORD_DEFAULT_DB "/var/lib/drover/droverd.db"

/* argv[0] is "token". */
int drv_cmd_token(int argc, char **argv);

#endif
