/*
 * state.c: the agent's SQLite state (steps, releases, staged images).
 */
#include "state.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db.h"
#include "err.h"
#include "log.h"

struct state {
	sqlite3 *db;
	pthread_mutex_t lock;
};

static const char *const migrations[] = {
        "CREATE TABLE steps ("
        " step_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, deployment TEXT NOT NULL,"
        " action INTEGER NOT NULL, service TEXT NOT NULL,"
        " status INTEGER NOT NULL, message TEXT NOT NULL DEFAULT '',"
        " exit_code INTEGER NOT NULL DEFAULT 0, output_tail TEXT NOT NULL DEFAULT '',"
        " created_ms INTEGER NOT NULL, started_ms INTEGER, finished_ms INTEGER,"
        " duration_ms INTEGER NOT NULL DEFAULT 0);"
        "CREATE INDEX steps_status ON steps(status);"
        "CREATE TABLE releases ("
        " service TEXT NOT NULL, role INTEGER NOT NULL, digest TEXT NOT NULL,"
        " version TEXT NOT NULL, slot TEXT NOT NULL, port INTEGER NOT NULL,"
        " root TEXT NOT NULL, want_running INTEGER NOT NULL, since_ms INTEGER NOT NULL,"
        " spec BLOB NOT NULL, PRIMARY KEY (service, role));"
        "CREATE TABLE staged ("
        " service TEXT NOT NULL, digest TEXT NOT NULL, staged_ms INTEGER NOT NULL,"
        " PRIMARY KEY (service, digest));",
        /* the instruction of each step, so a step an agent restart
         * interrupted can be resumed */
        "ALTER TABLE steps ADD COLUMN ins BLOB;",
};

int state_open(const char *path, struct state **out)
{
	struct state *st = calloc(1, sizeof(*st));
	int rc;

	if (st == NULL)
		return DRV_ENOMEM;
	rc = drv_db_open(path, migrations, sizeof(migrations) / sizeof(migrations[0]), &st->db);
	/* SQLite's default page cache (2 MB) grew the agent's heap by a page
	 * for every new page of the steps table, about 130 KiB per 1,000
	 * instructions (docs/benchmarks.md, fifth round). A few statements
	 * per step need only the tables' upper pages; the file is in the OS's
	 * page cache anyway. 64 KiB fits in the 20 pages SQLite allocates
	 * when it opens the database, so the cache never allocates again. */
	if (rc == DRV_OK && (rc = drv_db_exec(st->db, "PRAGMA cache_size=-64")) != DRV_OK)
		drv_db_close(st->db);
	if (rc != DRV_OK) {
		free(st);
		return rc;
	}
	pthread_mutex_init(&st->lock, NULL);
	*out = st;
	return DRV_OK;
}

void state_close(struct state *st)
{
	if (st == NULL)
		return;
	drv_db_close(st->db);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

static int prep(struct state *st, const char *sql, sqlite3_stmt **out)
{
	if (sqlite3_prepare_v2(st->db, sql, -1, out, NULL) != SQLITE_OK) {
		drv_error("state", "cannot prepare statement", "error=\"%s\"",
		          sqlite3_errmsg(st->db));
		return DRV_EDB;
	}
	return DRV_OK;
}

/* Step a statement that returns no rows, then finalize it. */
static int run(struct state *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		drv_error("state", "statement failed", "error=\"%s\"", sqlite3_errmsg(st->db));
		return DRV_EDB;
	}
	return DRV_OK;
}

static char *col_str(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return strdup(t ? (const char *)t : "");
}

static void bind_str(sqlite3_stmt *s, int i, const char *v)
{
	sqlite3_bind_text(s, i, v ? v : "", -1, SQLITE_TRANSIENT);
}

void state_step_clear(struct state_step *s)
{
	if (s == NULL)
		return;
	free(s->step_id);
	free(s->deployment);
	free(s->service);
	free(s->message);
	free(s->output_tail);
	if (s->ins != NULL)
		drover__instruction__free_unpacked(s->ins, NULL);
	memset(s, 0, sizeof(*s));
}

void state_steps_free(struct state_step *s, size_t n)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		state_step_clear(&s[i]);
	free(s);
}

#define STEP_COLS                                                                                  \
	"step_id, deployment, service, message, output_tail, seq, action, status, exit_code,"      \
	" duration_ms"

static int read_step(sqlite3_stmt *s, struct state_step *out)
{
	struct state_step r = {
	        .step_id = col_str(s, 0),
	        .deployment = col_str(s, 1),
	        .service = col_str(s, 2),
	        .message = col_str(s, 3),
	        .output_tail = col_str(s, 4),
	        .seq = (uint64_t)sqlite3_column_int64(s, 5),
	        .action = sqlite3_column_int(s, 6),
	        .status = (enum state_step_status)sqlite3_column_int(s, 7),
	        .exit_code = sqlite3_column_int(s, 8),
	        .duration_ms = sqlite3_column_int64(s, 9),
	};
	if (!r.step_id || !r.deployment || !r.service || !r.message || !r.output_tail) {
		state_step_clear(&r);
		return DRV_ENOMEM;
	}
	*out = r;
	return DRV_OK;
}

int state_step_get(struct state *st, const char *step_id, struct state_step *out)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = prep(st, "SELECT " STEP_COLS " FROM steps WHERE step_id = ?", &s);
	if (rc == DRV_OK) {
		bind_str(s, 1, step_id);
		rc = sqlite3_step(s) == SQLITE_ROW ? read_step(s, out) : DRV_ENOENT;
		sqlite3_finalize(s);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int state_step_insert(struct state *st, const Drover__Instruction *ins, const char *service)
{
	sqlite3_stmt *s;
	int rc;
	size_t len = drover__instruction__get_packed_size(ins);
	uint8_t *buf = malloc(len ? len : 1);

	if (buf == NULL)
		return DRV_ENOMEM;
	drover__instruction__pack(ins, buf);
	pthread_mutex_lock(&st->lock);
	rc = prep(st,
	          "INSERT OR IGNORE INTO steps (step_id, seq, deployment, action, service, status,"
	          " created_ms, ins) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	          &s);
	if (rc == DRV_OK) {
		sqlite3_bind_blob(s, 8, buf, (int)len, SQLITE_TRANSIENT);
		bind_str(s, 1, ins->step_id);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)ins->seq);
		bind_str(s, 3, ins->deployment_id);
		sqlite3_bind_int(s, 4, ins->action);
		bind_str(s, 5, service);
		sqlite3_bind_int(s, 6, STEP_QUEUED);
		sqlite3_bind_int64(s, 7, drv_wall_ms());
		rc = run(st, s);
		if (rc == DRV_OK && sqlite3_changes(st->db) == 0)
			rc = DRV_EEXIST;
	}
	pthread_mutex_unlock(&st->lock);
	free(buf);
	return rc;
}

int state_step_start(struct state *st, const char *step_id)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = prep(st, "UPDATE steps SET status = ?, started_ms = ? WHERE step_id = ?", &s);
	if (rc == DRV_OK) {
		sqlite3_bind_int(s, 1, STEP_RUNNING_);
		sqlite3_bind_int64(s, 2, drv_wall_ms());
		bind_str(s, 3, step_id);
		rc = run(st, s);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int state_step_finish(struct state *st, const char *step_id, bool ok, const char *message,
                      int exit_code, const char *tail, int64_t duration_ms)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = prep(st,
	          "UPDATE steps SET status = ?, message = ?, exit_code = ?, output_tail = ?,"
	          " duration_ms = ?, finished_ms = ? WHERE step_id = ?",
	          &s);
	if (rc == DRV_OK) {
		sqlite3_bind_int(s, 1, ok ? STEP_OK : STEP_FAIL);
		bind_str(s, 2, message);
		sqlite3_bind_int(s, 3, exit_code);
		bind_str(s, 4, tail);
		sqlite3_bind_int64(s, 5, duration_ms);
		sqlite3_bind_int64(s, 6, drv_wall_ms());
		bind_str(s, 7, step_id);
		rc = run(st, s);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

static int collect_steps(struct state *st, sqlite3_stmt *s, struct state_step **out, size_t *n)
{
	struct state_step *arr = NULL;
	size_t len = 0, cap = 0;
	int rc = DRV_OK;

	while (sqlite3_step(s) == SQLITE_ROW) {
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct state_step *na = realloc(arr, nc * sizeof(*na));
			if (na == NULL) {
				rc = DRV_ENOMEM;
				break;
			}
			arr = na;
			cap = nc;
		}
		rc = read_step(s, &arr[len]);
		if (rc != DRV_OK)
			break;
		len++;
	}
	(void)st;
	if (rc != DRV_OK) {
		state_steps_free(arr, len);
		return rc;
	}
	*out = arr;
	*n = len;
	return DRV_OK;
}

/* Locked: the queued and running steps, oldest first. */
static int unfinished_steps(struct state *st, struct state_step **arr, size_t *len)
{
	sqlite3_stmt *s;
	int rc =
	        prep(st, "SELECT " STEP_COLS " FROM steps WHERE status IN (?, ?) ORDER BY seq", &s);

	if (rc == DRV_OK) {
		sqlite3_bind_int(s, 1, STEP_QUEUED);
		sqlite3_bind_int(s, 2, STEP_RUNNING_);
		rc = collect_steps(st, s, arr, len);
		sqlite3_finalize(s);
	}
	return rc;
}

int state_steps_interrupted(struct state *st, struct state_step **out, size_t *n)
{
	struct state_step *arr = NULL;
	sqlite3_stmt *s;
	size_t len = 0;
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = unfinished_steps(st, &arr, &len);
	/* without its instruction (none kept, or no statement) a step is not resumed */
	if (rc == DRV_OK && len > 0 &&
	    prep(st, "SELECT ins FROM steps WHERE step_id = ?", &s) == DRV_OK) {
		for (size_t i = 0; i < len; i++) {
			sqlite3_reset(s);
			bind_str(s, 1, arr[i].step_id);
			if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_bytes(s, 0) > 0)
				arr[i].ins = drover__instruction__unpack(
				        NULL, (size_t)sqlite3_column_bytes(s, 0),
				        sqlite3_column_blob(s, 0));
		}
		sqlite3_finalize(s);
	}
	pthread_mutex_unlock(&st->lock);
	if (rc != DRV_OK) {
		state_steps_free(arr, len);
		return rc;
	}
	*out = arr;
	*n = len;
	return DRV_OK;
}

int state_steps_recover(struct state *st, const char *why, struct state_step **out, size_t *n)
{
	struct state_step *arr = NULL;
	sqlite3_stmt *s;
	size_t len = 0;
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = unfinished_steps(st, &arr, &len);
	if (rc == DRV_OK)
		rc = prep(st,
		          "UPDATE steps SET status = ?, message = ?, exit_code = -1,"
		          " finished_ms = ? WHERE status IN (?, ?)",
		          &s);
	if (rc == DRV_OK) {
		sqlite3_bind_int(s, 1, STEP_FAIL);
		bind_str(s, 2, why);
		sqlite3_bind_int64(s, 3, drv_wall_ms());
		sqlite3_bind_int(s, 4, STEP_QUEUED);
		sqlite3_bind_int(s, 5, STEP_RUNNING_);
		rc = run(st, s);
	}
	pthread_mutex_unlock(&st->lock);
	if (rc != DRV_OK) {
		state_steps_free(arr, len);
		return rc;
	}
	for (size_t i = 0; i < len; i++) {
		char *m = strdup(why);
		if (m != NULL) {
			free(arr[i].message);
			arr[i].message = m;
		}
		arr[i].status = STEP_FAIL;
		arr[i].exit_code = -1;
	}
	*out = arr;
	*n = len;
	return DRV_OK;
}

int state_steps_prune(struct state *st, int64_t max_age_ms, int keep_last)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->lock);
	/* Runs every 100 steps, so it must be light on the heap: the last
	 * keep_last steps by rowid (which grows with each insert) instead of a
	 * NOT IN (SELECT step_id ... ORDER BY created_ms LIMIT keep_last), and
	 * `+status` so the scan goes by rowid, not through steps_status (the IN
	 * on that index peaked at +100 KB, the sorted copy at +400 KB; now
	 * about 20 KB). */
	rc = prep(st,
	          "DELETE FROM steps WHERE rowid <= (SELECT max(rowid) FROM steps) - ?"
	          " AND +status IN (?, ?) AND finished_ms < ?",
	          &s);
	if (rc == DRV_OK) {
		sqlite3_bind_int(s, 1, keep_last);
		sqlite3_bind_int(s, 2, STEP_OK);
		sqlite3_bind_int(s, 3, STEP_FAIL);
		sqlite3_bind_int64(s, 4, drv_wall_ms() - max_age_ms);
		rc = run(st, s);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* --- releases --- */

void state_release_clear(struct state_release *r)
{
	if (r == NULL)
		return;
	free(r->service);
	free(r->digest);
	free(r->version);
	free(r->slot);
	free(r->root);
	if (r->spec != NULL)
		drover__service_spec__free_unpacked(r->spec, NULL);
	memset(r, 0, sizeof(*r));
}

void state_releases_free(struct state_release *r, enum state_role *roles, size_t n)
{
	for (size_t i = 0; r != NULL && i < n; i++)
		state_release_clear(&r[i]);
	free(r);
	free(roles);
}

#define REL_COLS "service, digest, version, slot, root, port, want_running, since_ms, spec, role"

static int read_release(sqlite3_stmt *s, struct state_release *out, enum state_role *role)
{
	const void *blob = sqlite3_column_blob(s, 8);
	int blen = sqlite3_column_bytes(s, 8);
	struct state_release r = {
	        .service = col_str(s, 0),
	        .digest = col_str(s, 1),
	        .version = col_str(s, 2),
	        .slot = col_str(s, 3),
	        .root = col_str(s, 4),
	        .port = (uint32_t)sqlite3_column_int(s, 5),
	        .want_running = sqlite3_column_int(s, 6) != 0,
	        .since_ms = sqlite3_column_int64(s, 7),
	};
	r.spec = drover__service_spec__unpack(NULL, (size_t)blen, blob);
	if (!r.service || !r.digest || !r.version || !r.slot || !r.root || !r.spec) {
		state_release_clear(&r);
		return r.spec == NULL ? DRV_EDECODE : DRV_ENOMEM;
	}
	if (role != NULL)
		*role = (enum state_role)sqlite3_column_int(s, 9);
	*out = r;
	return DRV_OK;
}

int state_release_get(struct state *st, const char *service, enum state_role role,
                      struct state_release *out)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = prep(st, "SELECT " REL_COLS " FROM releases WHERE service = ? AND role = ?", &s);
	if (rc == DRV_OK) {
		bind_str(s, 1, service);
		sqlite3_bind_int(s, 2, role);
		rc = sqlite3_step(s) == SQLITE_ROW ? read_release(s, out, NULL) : DRV_ENOENT;
		sqlite3_finalize(s);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

static int exec_locked(struct state *st, const char *service, const char *sql)
{
	sqlite3_stmt *s;
	int rc = prep(st, sql, &s);

	if (rc != DRV_OK)
		return rc;
	bind_str(s, 1, service);
	return run(st, s);
}

static int insert_release(struct state *st, const struct state_release *rel, enum state_role role)
{
	size_t len = drover__service_spec__get_packed_size(rel->spec);
	uint8_t *buf = malloc(len ? len : 1);
	sqlite3_stmt *s;
	int rc;

	if (buf == NULL)
		return DRV_ENOMEM;
	drover__service_spec__pack(rel->spec, buf);
	rc = prep(st,
	          "INSERT OR REPLACE INTO releases (service, digest, version, slot, root, port,"
	          " want_running, since_ms, spec, role) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	          &s);
	if (rc == DRV_OK) {
		bind_str(s, 1, rel->service);
		bind_str(s, 2, rel->digest);
		bind_str(s, 3, rel->version);
		bind_str(s, 4, rel->slot);
		bind_str(s, 5, rel->root);
		sqlite3_bind_int(s, 6, (int)rel->port);
		sqlite3_bind_int(s, 7, rel->want_running);
		sqlite3_bind_int64(s, 8, drv_wall_ms());
		sqlite3_bind_blob(s, 9, buf, (int)len, SQLITE_TRANSIENT);
		sqlite3_bind_int(s, 10, role);
		rc = run(st, s);
	}
	free(buf);
	return rc;
}

static int finish_tx(struct state *st, int rc)
{
	if (rc == DRV_OK)
		rc = drv_db_exec(st->db, "COMMIT");
	if (rc != DRV_OK)
		drv_db_exec(st->db, "ROLLBACK");
	return rc;
}

int state_release_shift(struct state *st, const struct state_release *rel)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = drv_db_exec(st->db, "BEGIN IMMEDIATE");
	if (rc == DRV_OK) {
		rc = exec_locked(st, rel->service,
		                 "DELETE FROM releases WHERE service = ? AND role = 1");
		if (rc == DRV_OK)
			rc = exec_locked(
			        st, rel->service,
			        "UPDATE releases SET role = 1 WHERE service = ? AND role = 0");
		if (rc == DRV_OK)
			rc = insert_release(st, rel, ROLE_CURRENT);
		if (rc == DRV_OK)
			rc = exec_locked(st, rel->service, "DELETE FROM staged WHERE service = ?");
		rc = finish_tx(st, rc);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int state_release_swap(struct state *st, const char *service)
{
	sqlite3_stmt *s;
	int rc, n = 0;

	pthread_mutex_lock(&st->lock);
	rc = drv_db_exec(st->db, "BEGIN IMMEDIATE");
	if (rc == DRV_OK) {
		rc = prep(st, "SELECT count(*) FROM releases WHERE service = ? AND role = 1", &s);
		if (rc == DRV_OK) {
			bind_str(s, 1, service);
			if (sqlite3_step(s) == SQLITE_ROW)
				n = sqlite3_column_int(s, 0);
			sqlite3_finalize(s);
			if (n == 0)
				rc = DRV_ENOENT;
		}
		/* Through a spare role: (service, role) is unique row by row. */
		if (rc == DRV_OK)
			rc = exec_locked(
			        st, service,
			        "UPDATE releases SET role = 2 WHERE service = ? AND role = 0");
		if (rc == DRV_OK)
			rc = exec_locked(
			        st, service,
			        "UPDATE releases SET role = 0 WHERE service = ? AND role = 1");
		if (rc == DRV_OK)
			rc = exec_locked(st, service,
			                 "UPDATE releases SET role = 1, since_ms ="
			                 " CAST(strftime('%s','now') AS INTEGER) * 1000"
			                 " WHERE service = ? AND role = 2");
		rc = finish_tx(st, rc);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int state_release_set_want(struct state *st, const char *service, enum state_role role, bool on)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = prep(st, "UPDATE releases SET want_running = ? WHERE service = ? AND role = ?", &s);
	if (rc == DRV_OK) {
		sqlite3_bind_int(s, 1, on);
		bind_str(s, 2, service);
		sqlite3_bind_int(s, 3, role);
		rc = run(st, s);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int state_release_list(struct state *st, struct state_release **out, enum state_role **roles_out,
                       size_t *n)
{
	struct state_release *arr = NULL;
	enum state_role *roles = NULL;
	size_t len = 0, cap = 0;
	sqlite3_stmt *s = NULL;
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = prep(st, "SELECT " REL_COLS " FROM releases ORDER BY service, role", &s);
	while (rc == DRV_OK && sqlite3_step(s) == SQLITE_ROW) {
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct state_release *na = realloc(arr, nc * sizeof(*na));
			enum state_role *nr;
			if (na != NULL)
				arr = na;
			nr = na ? realloc(roles, nc * sizeof(*nr)) : NULL;
			if (nr == NULL) {
				rc = DRV_ENOMEM;
				break;
			}
			roles = nr;
			cap = nc;
		}
		rc = read_release(s, &arr[len], &roles[len]);
		if (rc == DRV_OK)
			len++;
	}
	if (s != NULL)
		sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	if (rc != DRV_OK) {
		state_releases_free(arr, roles, len);
		return rc;
	}
	*out = arr;
	*roles_out = roles;
	*n = len;
	return DRV_OK;
}

/* --- staged --- */

int state_staged_add(struct state *st, const char *service, const char *digest)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = prep(st, "INSERT OR REPLACE INTO staged (service, digest, staged_ms) VALUES (?, ?, ?)",
	          &s);
	if (rc == DRV_OK) {
		bind_str(s, 1, service);
		bind_str(s, 2, digest);
		sqlite3_bind_int64(s, 3, drv_wall_ms());
		rc = run(st, s);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int state_staged_clear(struct state *st, const char *service)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = exec_locked(st, service, "DELETE FROM staged WHERE service = ?");
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void state_strings_free(char **s, size_t n)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		free(s[i]);
	free(s);
}

int state_kept(struct state *st, char ***services, char ***digests, size_t *n)
{
	char **sv = NULL, **dg = NULL;
	size_t len = 0, cap = 0;
	sqlite3_stmt *s = NULL;
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = prep(st,
	          "SELECT service, digest FROM releases UNION SELECT service, digest FROM staged",
	          &s);
	while (rc == DRV_OK && sqlite3_step(s) == SQLITE_ROW) {
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **a = realloc(sv, nc * sizeof(*a)), **b;
			if (a != NULL)
				sv = a;
			b = a ? realloc(dg, nc * sizeof(*b)) : NULL;
			if (b == NULL) {
				rc = DRV_ENOMEM;
				break;
			}
			dg = b;
			cap = nc;
		}
		sv[len] = col_str(s, 0);
		dg[len] = col_str(s, 1);
		len++;
		if (sv[len - 1] == NULL || dg[len - 1] == NULL)
			rc = DRV_ENOMEM;
	}
	if (s != NULL)
		sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	if (rc != DRV_OK) {
		state_strings_free(sv, len);
		state_strings_free(dg, len);
		return rc;
	}
	*services = sv;
	*digests = dg;
	*n = len;
	return DRV_OK;
}
