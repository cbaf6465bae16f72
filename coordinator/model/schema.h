/*
 * schema.h: the coordinator's SQLite schema (one database, DIR/droverd.db).
 * Open it with drv_db_open(path, drv_schema_migrations(&n), n, &db).
 */
#ifndef DRV_SCHEMA_H
#define DRV_SCHEMA_H

#include <stddef.h>

const char *const *drv_schema_migrations(size_t *n);

#endif
