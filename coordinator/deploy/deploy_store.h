/*
 * deploy_store.h: the deployments table (schema migration 2).
 *
 * One row per deployment: its normalized plan (digests resolved), the
 * sequencer's saved state, the engine's own bookkeeping ("extra": targets,
 * host times and messages, hook results), and the summary columns the list
 * endpoint reads (state, phase, reason, counts, times). The final API object
 * ("view") is written once the deployment has ended.
 *
 * The host, hook and step records of a deployment that runs are rows of their own
 * (deployment_records, schema migration 12), so that a save writes the
 * records that changed, not every host's; the plan's targets (O(hosts),
 * fixed at creation) are a column written at the insert. "extra" holds the
 * rest (steps in flight, gates, checks). The records are deleted when the
 * deployment ends: its final view holds them.
 *
 * A transition is saved with deploy_store_save: the row, its changed
 * records and the events it causes in one transaction, before any action is
 * performed. deploy_store_begin/commit put the saves of several
 * deployments (one engine turn) in one transaction: one commit, one fsync.
 *
 * Threads: the engine's thread is the only user of its connection.
 * Ownership: deploy_row strings marked malloc'd are freed by
 * deploy_row_clear; everything else is copied into fixed buffers.
 */
#ifndef DRV_DEPLOY_STORE_H
#define DRV_DEPLOY_STORE_H

#include <jansson.h>
#include "sqldb.h"
#include <stdint.h>

#include "sequencer.h"

#define DEPLOY_NAME_MAX  64
#define DEPLOY_STATE_MAX 24

struct deploy_row {
	char id[DRV_SEQ_ID_MAX + 1];
	char name[DEPLOY_NAME_MAX + 1];
	char version[DEPLOY_NAME_MAX + 1];
	char actor[DEPLOY_NAME_MAX + 1];
	char state[DEPLOY_STATE_MAX], phase[DEPLOY_STATE_MAX];
	char reason[DRV_SEQ_TEXT_MAX];
	char *plan;      /* malloc'd JSON text */
	char *seq_state; /* malloc'd JSON text, NULL before the start */
	char *extra;     /* malloc'd JSON text */
	char *view;      /* malloc'd JSON text, NULL until finished */
	int64_t failed_hosts, max_failed_hosts;
	int64_t created_ms, updated_ms, finished_ms;
	/* promotion (schema migration 9): "" / NULL when none */
	char environment[DRV_PLAN_NAME_MAX + 1];
	char release_id[DRV_PLAN_RELEASE_ID_MAX];
	char promoted_from[DRV_SEQ_ID_MAX + 1];
	char *release; /* malloc'd JSON text: the release (plan.h), set at insert */
	/* migration 12: extra's "targets" (malloc'd JSON text), written at the
	 * insert and by a save only when not NULL; NULL in a row written
	 * before (its targets are inside extra) */
	char *targets;
};

void deploy_row_clear(struct deploy_row *r);

/* A fresh id "dep-N-XXXXXX": N counts deployments of this database, the
 * random suffix keeps step ids unique on agents that outlive a database. */
int deploy_store_new_id(struct drv_sql *db, char id[DRV_SEQ_ID_MAX + 1]);

/* Insert a new row (state, plan, extra, times; seq_state may be NULL). */
int deploy_store_insert(struct drv_sql *db, const struct deploy_row *r, const json_t *events);

/*
 * Save a transition in one transaction: the row's seq_state (when not
 * NULL), extra, targets (when not NULL), summary columns, view (when not
 * NULL); recs: JSON text of an array of [SECTION, KEY, RECORD] (the records
 * that changed, written over the stored ones; NULL: none); gone: JSON text
 * of an array of [SECTION, KEY] (records deleted; NULL: none); and `events`: an
 * array of {"kind", "agent" (optional), "data"} inserted into the events
 * table under the deployment's id (may be NULL or empty). A row with
 * finished_ms > 0 has ended: its records are deleted instead.
 * Inside deploy_store_begin/commit the save joins that transaction (on a
 * failure the caller rolls the whole batch back).
 */
int deploy_store_save(struct drv_sql *db, const struct deploy_row *r, const char *recs,
                      const char *gone, const json_t *events);

/* One transaction for several saves (one engine turn): begin, then
 * deploy_store_save for each, then commit (DRV_OK: all saved) or rollback. */
int deploy_store_begin(struct drv_sql *db);
int deploy_store_commit(struct drv_sql *db);
void deploy_store_rollback(struct drv_sql *db);

/* The records of a deployment: fn(arg, section, key, data JSON text), in no
 * particular order; a non-zero return from fn stops and is returned. */
typedef int (*deploy_rec_fn)(void *arg, const char *section, const char *key, const char *data);
int deploy_store_records(struct drv_sql *db, const char *id, deploy_rec_fn fn, void *arg);

/* Every deployment that has not finished, oldest first. */
typedef int (*deploy_row_fn)(void *arg, struct deploy_row *r);
int deploy_store_active(struct drv_sql *db, deploy_row_fn fn, void *arg);
/* Finished deployments (with their plan and final view), newest first, at
 * most limit. */
int deploy_store_finished(struct drv_sql *db, int limit, deploy_row_fn fn, void *arg);

/* One row (DRV_ENOENT if unknown). */
int deploy_store_get(struct drv_sql *db, const char *id, struct deploy_row *out);

/* The newest deployment of release_id to environment env that succeeded:
 * its id into id_out; DRV_ENOENT when there is none. */
int deploy_store_release_succeeded(struct drv_sql *db, const char *env, const char *release_id,
                                   char id_out[DRV_SEQ_ID_MAX + 1]);

/* Summaries, newest first: an array of objects with id, deployment,
 * version, state, phase, reason, actor, times and counts. */
int deploy_store_list(struct drv_sql *db, int limit, json_t **out);

/* How many deployments are in each state: fn(state, count). */
typedef void (*deploy_count_fn)(void *arg, const char *state, int64_t n);
int deploy_store_counts(struct drv_sql *db, deploy_count_fn fn, void *arg);

/* The report events recorded for a deployment (core_report.c writes them before
 * it acknowledges a report), oldest first: fn(agent, data). */
typedef void (*deploy_report_fn)(void *arg, const char *agent, json_t *data);
int deploy_store_reports(struct drv_sql *db, const char *id, deploy_report_fn fn, void *arg);

#endif
