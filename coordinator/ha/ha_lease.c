/* ha_lease.c: the leader lease on PostgreSQL (ha_lease.h). */
#include "ha_lease.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "ha.h"
#include "log.h"

/* The database's clock, in milliseconds: one clock for the whole group. */
#define NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"

struct ha_lease {
	struct drv_sql *db; /* the lease's own connection (LISTEN) */
	char holder[HA_NODE_MAX + 40];
	char node[HA_NODE_MAX + 1];
	char url[DRV_HA_URL_MAX + 1];
	int64_t lease_ms;
	_Atomic uint64_t epoch;   /* ours while we lead, else 0 */
	int64_t valid_until_mono; /* our own view of when our lease runs out */
	int64_t holder_left_ms;   /* a follower: the holder's lease left at the last try */
	pthread_t thread;
	bool running;
	int wake[2]; /* stop pipe */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* leadership changed */
};

static int open_db(struct ha_lease *l, const struct ha_lease_config *c)
{
	int rc;

	if (strncmp(c->target, DRV_SQL_PG_PREFIX, strlen(DRV_SQL_PG_PREFIX)) != 0) {
		drv_error("ha", "the lease needs the PostgreSQL store", "node=%s", c->node);
		return DRV_EINVAL;
	}
	rc = drv_sql_open(c->target, c->mig, c->n_mig, &l->db);
	if (rc != DRV_OK)
		return rc;
	/* A take waits for a commit that holds the row (the fence) no longer than this. */
	return drv_sql_exec(l->db, "SET lock_timeout = '1s'; LISTEN drover_lease");
}

int ha_lease_new(const struct ha_lease_config *c, struct ha_lease **out)
{
	struct ha_lease *l = calloc(1, sizeof(*l));
	uint8_t rnd[8];
	int rc;

	if (l == NULL)
		return DRV_ENOMEM;
	if (c->lease_ms < 300 || strlen(c->node) > HA_NODE_MAX ||
	    (c->url != NULL && strlen(c->url) > DRV_HA_URL_MAX)) {
		free(l);
		return DRV_EINVAL;
	}
	randombytes_buf(rnd, sizeof(rnd));
	snprintf(l->node, sizeof(l->node), "%s", c->node);
	snprintf(l->holder, sizeof(l->holder), "%s/%02x%02x%02x%02x%02x%02x%02x%02x", c->node,
	         rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	snprintf(l->url, sizeof(l->url), "%s", c->url ? c->url : "");
	l->lease_ms = c->lease_ms;
	l->wake[0] = l->wake[1] = -1;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	rc = open_db(l, c);
	if (rc == DRV_OK && pipe(l->wake) != 0)
		rc = DRV_ESYS;
	if (rc != DRV_OK) {
		ha_lease_free(l);
		return rc;
	}
	*out = l;
	return DRV_OK;
}

/* Who holds it now (after a failed take): the epoch, the URL and how long
 * the lease has left (by the database's clock; l->holder_left_ms). */
static void read_holder(struct ha_lease *l, uint64_t *epoch, char *url, size_t n)
{
	struct drv_sql_stmt *st;

	*epoch = 0;
	url[0] = '\0';
	l->holder_left_ms = l->lease_ms;
	if (drv_sql_cached(l->db,
	                   "SELECT epoch, url, expires_ms - " NOW_MS
	                   " FROM leader_lease WHERE name = 'droverd'",
	                   &st) != DRV_OK)
		return;
	if (drv_sql_step(st) == DRV_SQL_ROW) {
		*epoch = (uint64_t)drv_sql_col_int64(st, 0);
		snprintf(url, n, "%s", drv_sql_col_text(st, 1) ? drv_sql_col_text(st, 1) : "");
		l->holder_left_ms = drv_sql_col_int64(st, 2);
	}
	drv_sql_done(st);
}

static void publish(struct ha_lease *l, bool leader, uint64_t epoch, const char *url)
{
	bool was = atomic_load(&l->epoch) != 0;

	atomic_store(&l->epoch, leader ? epoch : 0);
	if (was != leader)
		drv_info("ha", leader ? "this node leads the group" : "this node follows",
		         "node=%s epoch=%llu leader_url=%s", l->node, (unsigned long long)epoch,
		         leader ? l->url : url);
	drv_ha_set(leader, epoch, url);
	pthread_mutex_lock(&l->mu);
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

int ha_lease_try(struct ha_lease *l, bool *leader, uint64_t *epoch)
{
	struct drv_sql_stmt *st;
	int64_t start = drv_mono_ms();
	char url[DRV_HA_URL_MAX + 1];
	int rc, step;

	/* A take (another holder, or ours expired) makes a new epoch; a renewal keeps it. */
	rc = drv_sql_cached(
	        l->db,
	        "INSERT INTO leader_lease(name, holder, url, epoch, expires_ms)"
	        " VALUES ('droverd', ?1, ?2, 1, " NOW_MS " + ?3)"
	        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, url = excluded.url,"
	        "  epoch = CASE WHEN leader_lease.holder = excluded.holder"
	        "   AND leader_lease.expires_ms >= " NOW_MS " THEN leader_lease.epoch"
	        "   ELSE leader_lease.epoch + 1 END,"
	        "  expires_ms = excluded.expires_ms"
	        " WHERE leader_lease.holder = excluded.holder OR leader_lease.expires_ms < " NOW_MS
	        " RETURNING epoch",
	        &st);
	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_text(st, 1, l->holder);
	drv_sql_bind_text(st, 2, l->url);
	drv_sql_bind_int64(st, 3, l->lease_ms);
	step = drv_sql_step(st);
	if (step == DRV_SQL_ROW) {
		*epoch = (uint64_t)drv_sql_col_int64(st, 0);
		*leader = true;
		l->valid_until_mono = start + l->lease_ms;
		drv_sql_done(st);
		publish(l, true, *epoch, "");
		return DRV_OK;
	}
	drv_sql_done(st);
	if (step != DRV_SQL_DONE)
		return step;
	read_holder(l, epoch, url, sizeof(url));
	*leader = false;
	publish(l, false, *epoch, url);
	return DRV_OK;
}

int ha_lease_fence(struct drv_sql *db, void *arg)
{
	struct ha_lease *l = arg;
	uint64_t epoch = atomic_load(&l->epoch);
	struct drv_sql_stmt *st;
	int rc;

	if (epoch == 0)
		return DRV_EFENCED;
	rc = drv_sql_prepare(db,
	                     "SELECT 1 FROM leader_lease WHERE name = 'droverd' AND holder = ?"
	                     " AND epoch = ? AND expires_ms > " NOW_MS " FOR SHARE",
	                     &st);
	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_text(st, 1, l->holder);
	drv_sql_bind_int64(st, 2, (int64_t)epoch);
	rc = drv_sql_step(st) == DRV_SQL_ROW ? DRV_OK : DRV_EFENCED;
	drv_sql_finalize(st);
	return rc;
}

void ha_lease_fence_on(struct ha_lease *l, struct drv_sql *db)
{
	if (db != NULL && drv_sql_engine_of(db) == DRV_SQL_PG)
		drv_sql_set_fence(db, ha_lease_fence, l);
}

/* Sleep until the next renewal, a NOTIFY from the group, or stop. false: stop. */
static bool wait_next(struct ha_lease *l, int64_t ms)
{
	PGconn *c = drv_sql_handle(l->db);
	struct pollfd p[2] = {{.fd = l->wake[0], .events = POLLIN},
	                      {.fd = PQsocket(c), .events = POLLIN}};
	PGnotify *n;
	bool notified = false;

	while (!notified) {
		int64_t t0 = drv_mono_ms();

		while ((n = PQnotifies(c)) != NULL) {
			PQfreemem(n);
			notified = true;
		}
		if (notified || ms <= 0)
			break;
		if (poll(p, p[1].fd >= 0 ? 2 : 1, (int)ms) < 0 && errno != EINTR)
			break;
		if (p[0].revents != 0)
			return false;
		if (p[1].revents != 0)
			PQconsumeInput(c);
		ms -= drv_mono_ms() - t0;
	}
	return true;
}

/* A lease runs out this long before a follower tries to take it: the
 * database's clock decides (the take's WHERE), this only wakes us. */
#define TAKE_MARGIN_MS 20

/* How long until the next try: a leader renews every lease/3; a follower
 * tries again when the holder's lease runs out, if that is sooner, so that
 * a dead leader is replaced within the lease rather than the lease plus a
 * renewal period. */
static int64_t next_try_ms(const struct ha_lease *l, bool leader, int rc)
{
	int64_t every = l->lease_ms / 3, left = l->holder_left_ms + TAKE_MARGIN_MS;

	if (leader || rc != DRV_OK || left >= every)
		return every;
	return left > TAKE_MARGIN_MS ? left : TAKE_MARGIN_MS;
}

static void *lease_main(void *arg)
{
	struct ha_lease *l = arg;
	int64_t wait;

	bool relisten = false;

	do {
		bool leader = false;
		uint64_t epoch = 0;
		int rc = ha_lease_try(l, &leader, &epoch);

		/* a connection the engine had to reset has forgotten its LISTEN */
		if (rc == DRV_OK && relisten)
			relisten = drv_sql_exec(l->db, "LISTEN drover_lease") != DRV_OK;
		if (rc != DRV_OK) {
			relisten = true;
			drv_warn("ha", "cannot reach the lease", "error=\"%s\"",
			         drv_sql_errmsg(l->db));
			/* without the database, lead no longer than the lease we hold */
			if (atomic_load(&l->epoch) != 0 && drv_mono_ms() >= l->valid_until_mono)
				publish(l, false, 0, "");
		}
		wait = next_try_ms(l, leader, rc);
	} while (wait_next(l, wait));
	return NULL;
}

int ha_lease_start(struct ha_lease *l)
{
	if (pthread_create(&l->thread, NULL, lease_main, l) != 0)
		return DRV_ESYS;
	l->running = true;
	return DRV_OK;
}

bool ha_lease_wait_leader(struct ha_lease *l, int64_t timeout_ms)
{
	struct timespec ts;
	bool leader;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&l->mu);
	while (atomic_load(&l->epoch) == 0) {
		if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) != 0)
			break;
	}
	leader = atomic_load(&l->epoch) != 0;
	pthread_mutex_unlock(&l->mu);
	return leader;
}

static void stop_thread(struct ha_lease *l)
{
	if (!l->running)
		return;
	if (write(l->wake[1], "x", 1) != 1)
		drv_warn("ha", "cannot wake the lease thread", "error=\"%s\"", strerror(errno));
	pthread_join(l->thread, NULL);
	l->running = false;
}

void ha_lease_release(struct ha_lease *l)
{
	struct drv_sql_stmt *st;

	if (l == NULL)
		return;
	stop_thread(l);
	/* Stop claiming the lead before the lease is given up: once the row
	 * expires another node may take it and must never see two leaders here. */
	atomic_store(&l->epoch, 0);
	drv_ha_set(false, 0, "");
	if (drv_sql_prepare(l->db,
	                    "UPDATE leader_lease SET expires_ms = 0 WHERE name = 'droverd'"
	                    " AND holder = ?",
	                    &st) == DRV_OK) {
		drv_sql_bind_text(st, 1, l->holder);
		if (drv_sql_step(st) == DRV_SQL_DONE && drv_sql_changes(l->db) == 1)
			drv_info("ha", "lease given up: the group may take over", "node=%s",
			         l->node);
		drv_sql_finalize(st);
	}
	drv_sql_exec(l->db, "NOTIFY drover_lease");
}

void ha_lease_free(struct ha_lease *l)
{
	if (l == NULL)
		return;
	stop_thread(l);
	drv_sql_close(l->db);
	if (l->wake[0] >= 0)
		close(l->wake[0]);
	if (l->wake[1] >= 0)
		close(l->wake[1]);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}
