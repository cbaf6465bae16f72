/* cmd_token.c: droverd token create|revoke|list. */
#include "cmd_token.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqldb.h"
#include "dconf.h"
#include "err.h"
#include "schema.h"
#include "tokens.h"

static const char usage[] =
        "usage: droverd token create --role viewer|deployer|approver|admin|alerts --name NAME "
        "[--config FILE | --db PATH]\n"
        "       droverd token revoke NAME [--config FILE | --db PATH]\n"
        "       droverd token list [--json] [--config FILE | --db PATH]\n";

struct token_opts {
	const char *config;
	const char *db;
	const char *role;
	const char *name;
	int json;
};

static int parse(int argc, char **argv, struct token_opts *o)
{
	static const struct option longopts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"db", required_argument, NULL, 'd'},
	        {"role", required_argument, NULL, 'r'},
	        {"name", required_argument, NULL, 'n'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:d:r:n:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'd': o->db = optarg; break;
		case 'r': o->role = optarg; break;
		case 'n': o->name = optarg; break;
		case 'j': o->json = 1; break;
		default: return DRV_EINVAL;
		}
	}
	return DRV_OK;
}

/* The database droverd.yaml names (`database:`; it need not sit beside the
 * config: the Debian package keeps it in /var/lib/drover/coordinator). */
static int config_db(const char *config, char *path, size_t size)
{
	struct droverd_conf conf;
	struct drv_cfg_diag diag;

	if (dconf_load(config, &conf, &diag) != DRV_OK) {
		drv_cfg_diag_print(&diag);
		return DRV_EINVAL;
	}
	/* an HA group's tokens live in its PostgreSQL store */
	if (conf.pg_dsn[0] != '\0')
		snprintf(path, size, "%s%s", DRV_SQL_PG_PREFIX, conf.pg_dsn);
	else
		snprintf(path, size, "%s", conf.database);
	dconf_free(&conf);
	return DRV_OK;
}

static int open_db(const struct token_opts *o, struct drv_sql **db)
{
	char path[4096];
	size_t n;
	const struct drv_sql_migration *mig = drv_schema_migrations(&n);

	if (o->db) {
		snprintf(path, sizeof(path), "%s", o->db);
	} else if (o->config) {
		if (config_db(o->config, path, sizeof(path)) != DRV_OK)
			return DRV_EINVAL;
	} else {
		snprintf(path, sizeof(path), "%s", DRV_COORD_DEFAULT_DB);
	}
	if (drv_sql_open(path, mig, n, db) != DRV_OK) {
		fprintf(stderr, "droverd token: cannot open the database %s\n", path);
		return DRV_EDB;
	}
	return DRV_OK;
}

static int do_create(struct drv_sql *db, const struct token_opts *o)
{
	char token[DRV_TOKEN_TEXT_LEN + 1];
	enum drv_role role;
	int rc;

	if (!o->name || !o->role) {
		fputs(usage, stderr);
		return 2;
	}
	if (drv_role_parse(o->role, &role) != DRV_OK) {
		fprintf(stderr, "droverd token: --role must be viewer, deployer, approver, admin "
		                "or alerts\n");
		return 2;
	}
	rc = drv_token_create(db, o->name, role, token);
	if (rc == DRV_EINVAL) {
		fprintf(stderr, "droverd token: a name is 1-64 of A-Z a-z 0-9 . _ @ -\n");
		return 2;
	}
	if (rc == DRV_EEXIST) {
		fprintf(stderr,
		        "droverd token: a token named %s exists (or existed); pick "
		        "another name\n",
		        o->name);
		return 1;
	}
	if (rc != DRV_OK) {
		fprintf(stderr, "droverd token: cannot create: %s\n", drv_strerror(rc));
		return 1;
	}
	printf("%s\n", token);
	fprintf(stderr, "token %s (%s) created; it is shown only this once\n", o->name,
	        drv_role_name(role));
	return 0;
}

static int do_revoke(struct drv_sql *db, const char *name)
{
	int rc = drv_token_revoke(db, name);

	if (rc == DRV_ENOENT) {
		fprintf(stderr, "droverd token: no token named %s\n", name);
		return 1;
	}
	if (rc != DRV_OK) {
		fprintf(stderr, "droverd token: cannot revoke: %s\n", drv_strerror(rc));
		return 1;
	}
	fprintf(stderr, "token %s revoked\n", name);
	return 0;
}

static int do_list(struct drv_sql *db, int json)
{
	json_t *arr, *t;
	size_t i;

	if (drv_token_list(db, &arr) != DRV_OK) {
		fprintf(stderr, "droverd token: cannot list tokens\n");
		return 1;
	}
	if (json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		printf("%-24s %-9s %s\n", "NAME", "ROLE", "STATE");
		json_array_foreach(arr, i, t)
		{
			printf("%-24s %-9s %s\n", json_string_value(json_object_get(t, "name")),
			       json_string_value(json_object_get(t, "role")),
			       json_is_null(json_object_get(t, "revoked_ms")) ? "active"
			                                                      : "revoked");
		}
	}
	json_decref(arr);
	return 0;
}

int drv_cmd_token(int argc, char **argv)
{
	struct token_opts o = {0};
	const char *verb = argc > 1 ? argv[1] : NULL;
	struct drv_sql *db;
	int rc;

	if (!verb || strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
		fputs(usage, verb ? stdout : stderr);
		return verb ? 0 : 2;
	}
	if (parse(argc - 1, argv + 1, &o) != DRV_OK) {
		fputs(usage, stderr);
		return 2;
	}
	if (optind + (strcmp(verb, "revoke") == 0) != argc - 1) {
		fputs(usage, stderr);
		return 2;
	}
	if (strcmp(verb, "create") != 0 && strcmp(verb, "revoke") != 0 &&
	    strcmp(verb, "list") != 0) {
		fputs(usage, stderr);
		return 2;
	}
	if (open_db(&o, &db) != DRV_OK)
		return 1;
	if (strcmp(verb, "create") == 0)
		rc = do_create(db, &o);
	else if (strcmp(verb, "revoke") == 0)
		rc = do_revoke(db, argv[1 + optind]);
	else
		rc = do_list(db, o.json);
	drv_sql_close(db);
	return rc;
}
