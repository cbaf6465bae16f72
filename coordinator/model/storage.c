/* storage.c: watching the state directory for a full or read-only disk (statvfs, SQLite errors, a
 * probe write). */
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sqlite3.h>

#include "clock.h"
#include "err.h"
#include "log.h"

#define LOG_EVERY_MS 5000 /* SQLite's write errors, while they repeat */

struct drv_storage {
	char *dir; /* the database's directory */
	sqlite3 *probe;
	int64_t min_free;
	pthread_mutex_t mu;
	enum drv_storage_state state;
	char msg[768];
};

static atomic_int failed_code;        /* the last write error not yet probed (0: none) */
static _Atomic int64_t last_log_mono; /* rate limit of the error log */

static bool storage_error(int code)
{
	int primary = code & 0xff;

	return primary == SQLITE_FULL || primary == SQLITE_READONLY || primary == SQLITE_IOERR;
}

void drv_storage_write_failed(int sqlite_rc)
{
	if (storage_error(sqlite_rc))
		atomic_store(&failed_code, sqlite_rc);
}

void drv_storage_suspect(void)
{
	atomic_store(&failed_code, SQLITE_IOERR);
}

static void sqlite_log(void *arg, int code, const char *msg)
{
	int64_t now = drv_mono_ms(), last = atomic_load(&last_log_mono);

	(void)arg;
	if (!storage_error(code))
		return;
	drv_storage_write_failed(code);
	if (now - last >= LOG_EVERY_MS &&
	    atomic_compare_exchange_strong(&last_log_mono, &last, now))
		drv_warn("storage", "a database write failed", "code=%d error=\"%s\"", code,
		         msg ? msg : "");
}

int drv_storage_install_log(void)
{
	return sqlite3_config(SQLITE_CONFIG_LOG, sqlite_log, NULL) == SQLITE_OK ? DRV_OK
	                                                                        : DRV_EINVAL;
}

int drv_storage_new(const char *db_path, struct drv_sql *probe, int64_t min_free,
                    struct drv_storage **out)
{
	struct drv_storage *s = calloc(1, sizeof(*s));
	char *copy = strdup(db_path);

	if (s == NULL || copy == NULL) {
		free(s);
		free(copy);
		return DRV_ENOMEM;
	}
	s->dir = strdup(dirname(copy));
	free(copy);
	if (s->dir == NULL) {
		free(s);
		return DRV_ENOMEM;
	}
	/* SQLite's file is this machine's to watch; a PostgreSQL server watches its own */
	s->probe = drv_sql_engine_of(probe) == DRV_SQL_SQLITE ? drv_sql_handle(probe) : NULL;
	s->min_free = min_free;
	pthread_mutex_init(&s->mu, NULL);
	*out = s;
	return DRV_OK;
}

void drv_storage_free(struct drv_storage *s)
{
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->mu);
	free(s->dir);
	free(s);
}

const char *drv_storage_state_name(enum drv_storage_state st)
{
	switch (st) {
	case DRV_STORAGE_FULL: return "full";
	case DRV_STORAGE_READONLY: return "read-only";
	default: return "ok";
	}
}

/* Can a file be created and written beside the database? 0, or -1 and
 * *sys_errno (EROFS, ENOSPC, EIO). SQLite does not always say which. */
static int file_probe(struct drv_storage *s, int *sys_errno)
{
	char path[4200];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/.storage-probe", s->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "p", 1) != 1 || fsync(fd) != 0) {
		*sys_errno = errno;
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	unlink(path);
	return rc;
}

/* A small write in its own transaction: SQLITE_OK when the disk takes it;
 * else the SQLite code and, in *sys_errno, the system's (EROFS, ENOSPC). */
static int probe_write(struct drv_storage *s, int *sys_errno)
{
	sqlite3_stmt *st;
	int rc;

	if (s->probe == NULL)
		return SQLITE_OK;
	if (sqlite3_prepare_v2(
	            s->probe, "INSERT OR REPLACE INTO meta(key, value) VALUES ('storage_probe', ?)",
	            -1, &st, NULL) != SQLITE_OK)
		return sqlite3_errcode(s->probe);
	sqlite3_bind_int64(st, 1, drv_wall_ms());
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		rc = sqlite3_extended_errcode(s->probe);
		*sys_errno = sqlite3_system_errno(s->probe);
	} else {
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static void set_state(struct drv_storage *s, enum drv_storage_state st, const char *msg)
{
	enum drv_storage_state was;

	pthread_mutex_lock(&s->mu);
	was = s->state;
	s->state = st;
	snprintf(s->msg, sizeof(s->msg), "%s", msg);
	pthread_mutex_unlock(&s->mu);
	if (was == st)
		return;
	if (st == DRV_STORAGE_OK)
		drv_info("storage", "the state directory is writable again: changes are accepted",
		         "dir=%s was=%s", s->dir, drv_storage_state_name(was));
	else
		drv_error("storage", "the state directory cannot be written: changes are refused",
		          "dir=%s state=%s detail=\"%s\"", s->dir, drv_storage_state_name(st), msg);
}

void drv_storage_check(struct drv_storage *s)
{
	struct statvfs v;
	char msg[768];
	int code, probe, sys = 0;
	bool ro;

	if (statvfs(s->dir, &v) == 0) {
		int64_t avail = (int64_t)v.f_bavail * (int64_t)v.f_frsize;

		if (v.f_flag & ST_RDONLY) {
			snprintf(
			        msg, sizeof(msg),
			        "the state directory %s is on a read-only file system: changes are "
			        "refused until it is writable again",
			        s->dir);
			set_state(s, DRV_STORAGE_READONLY, msg);
			return;
		}
		if (avail < s->min_free) {
			snprintf(msg, sizeof(msg),
			         "the state directory %s is full: %lld KiB free, storage.min_free "
			         "is "
			         "%lld KiB; changes are refused until space returns",
			         s->dir, (long long)(avail / 1024),
			         (long long)(s->min_free / 1024));
			set_state(s, DRV_STORAGE_FULL, msg);
			return;
		}
	}
	code = atomic_exchange(&failed_code, 0);
	if (code == 0 && s->state == DRV_STORAGE_OK)
		return;
	if (file_probe(s, &sys) != 0) {
		ro = sys == EROFS;
		snprintf(msg, sizeof(msg),
		         "the state directory %s cannot be written (%s): changes are refused until "
		         "it can",
		         s->dir, strerror(sys));
		set_state(s, ro ? DRV_STORAGE_READONLY : DRV_STORAGE_FULL, msg);
		return;
	}
	probe = probe_write(s, &sys);
	if (probe == SQLITE_OK) {
		atomic_store(&failed_code, 0);
		set_state(s, DRV_STORAGE_OK, "");
		return;
	}
	if (!storage_error(probe)) { /* busy or the like: says nothing about the disk */
		atomic_store(&failed_code, code);
		return;
	}
	ro = (probe & 0xff) == SQLITE_READONLY || sys == EROFS;
	snprintf(msg, sizeof(msg),
	         "writes to the state directory %s fail (%s%s%s): changes are refused until they "
	         "succeed again",
	         s->dir, ro ? "read-only file system" : sqlite3_errstr(probe), sys ? ": " : "",
	         sys ? strerror(sys) : "");
	set_state(s, ro ? DRV_STORAGE_READONLY : DRV_STORAGE_FULL, msg);
}

enum drv_storage_state drv_storage_get(struct drv_storage *s, char *msg, size_t len)
{
	enum drv_storage_state st;

	if (s == NULL)
		return DRV_STORAGE_OK;
	pthread_mutex_lock(&s->mu);
	st = s->state;
	if (msg != NULL && len > 0)
		snprintf(msg, len, "%s", s->msg);
	pthread_mutex_unlock(&s->mu);
	return st;
}
