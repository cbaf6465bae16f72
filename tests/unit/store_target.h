/*
 * store_target.h: where a store test keeps its database. A SQLite file NAME
 * in dir by default; when DRV_TEST_PG holds a libpq conninfo (pg_run.sh runs
 * the test beside a PostgreSQL server of its own), that server, with its
 * schema emptied first so each case starts from nothing, as with a new file.
 * The same cases thus run on both engines (CTest labels store_sqlite and
 * store_pg).
 */
#ifndef DRV_TEST_STORE_TARGET_H
#define DRV_TEST_STORE_TARGET_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "sqldb.h"

static inline bool store_target_pg(void)
{
	return getenv("DRV_TEST_PG") != NULL;
}

/* 0 on success, -1 (logged) when the server cannot be reset. */
static inline int store_target(char *out, size_t n, const char *dir, const char *name)
{
	const char *pg = getenv("DRV_TEST_PG");
	PGconn *c;
	PGresult *r;
	int ok;

	if (pg == NULL) {
		snprintf(out, n, "%s/%s", dir, name);
		return 0;
	}
	c = PQconnectdb(pg);
	r = PQexec(c, "SET client_min_messages = warning;"
	              "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public");
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "store_target: cannot reset %s: %s\n", pg, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	snprintf(out, n, "%s%s", DRV_SQL_PG_PREFIX, pg);
	return ok ? 0 : -1;
}

#endif
