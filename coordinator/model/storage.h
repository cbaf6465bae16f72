/*
 * storage.h: is the coordinator's state directory writable? droverd keeps
 * serving reads when its disk is full or read-only, refuses changes with a
 * clear error while it is (api: 507 or 503), and notices by itself when
 * space returns (docs/operations.md).
 *
 * Two sources of truth: statvfs() on the directory of the database (the
 * read-only flag; free space below storage.min_free), and SQLite's own
 * errors (SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR through
 * SQLITE_CONFIG_LOG, which does not see every I/O error, and the writers
 * that matter calling drv_storage_suspect()). After such an error a probe
 * (a file written beside the database, then a row) decides, and the state
 * stays degraded until a probe succeeds. drv_storage_check() runs once a second on
 * droverd's tick; drv_storage_get() is cheap and safe from any thread.
 *
 *     drv_storage_install_log();         // before any SQLite use
 *     drv_storage_new(db_path, probe_db, min_free, &st);
 *     ... every second: drv_storage_check(st);
 *     ... in a handler: if (drv_storage_get(st, msg, sizeof msg) != DRV_STORAGE_OK) refuse
 */
#ifndef DRV_STORAGE_H
#define DRV_STORAGE_H

#include "sqldb.h"
#include <stddef.h>
#include <stdint.h>

enum drv_storage_state { DRV_STORAGE_OK, DRV_STORAGE_FULL, DRV_STORAGE_READONLY };

struct drv_storage;

/* Route SQLite's error log through the storage watch (and drover's log).
 * Call once, before the first SQLite call of the process. */
int drv_storage_install_log(void);

/* db_path: the database (its directory is watched). probe: a connection
 * for the probe write (borrowed). min_free: bytes that must stay free. */
int drv_storage_new(const char *db_path, struct drv_sql *probe, int64_t min_free,
                    struct drv_storage **out);
void drv_storage_free(struct drv_storage *s);

/* Look now: statvfs, and a probe write after a failed write. Logs each change. */
void drv_storage_check(struct drv_storage *s);

/* A write failed with this SQLite result code (extended codes are fine):
 * FULL, READONLY and IOERR make the state degraded until the next check
 * whose probe succeeds. Any thread. */
void drv_storage_write_failed(int sqlite_rc);

/* A write failed for a reason the caller cannot name (its error is
 * DRV_EDB): the next check probes the disk. Any thread. */
void drv_storage_suspect(void);

/* The state; msg (may be NULL) gets a sentence for operators. */
enum drv_storage_state drv_storage_get(struct drv_storage *s, char *msg, size_t len);
const char *drv_storage_state_name(enum drv_storage_state st);

#endif
