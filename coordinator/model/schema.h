/*
 * schema.h: the coordinator schema (SQLite DIR/droverd.db, or PostgreSQL).
 * Open it with drv_sql_open(path, drv_schema_migrations(&n), n, &db).
 */
#ifndef DRV_SCHEMA_H
#define DRV_SCHEMA_H

#include <stddef.h>

#include "sqldb.h"

const struct drv_sql_migration *drv_schema_migrations(size_t *n);

#endif
