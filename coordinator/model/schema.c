/*
 * schema.c: the coordinator database schema, one description for both
 * engines (common/sqldb.h: .sql is shared, PostgreSQL maps INTEGER, BLOB and
 * AUTOINCREMENT; .sqlite and .pg hold what cannot be shared). Append new
 * migrations at the end; never edit one that has shipped. Keep .sql
 * standard: ON CONFLICT rather than INSERT OR IGNORE/REPLACE, no SQLite-only
 * functions.
 */
#include "schema.h"

/* The audit log is append-only but for the two fields filled in after the
 * change (status, detail, while status is 0) and for failed authentication
 * rows (401, 429), which retention keeps to the newest few: migration 5's
 * SQLite triggers, in PL/pgSQL. */
#define PG_AUDIT_GUARD                                                                             \
	"CREATE FUNCTION audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"               \
	"  IF TG_OP = 'DELETE' THEN"                                                               \
	"    IF OLD.status NOT IN (401, 429) THEN"                                                 \
	"      RAISE EXCEPTION 'audit log is append-only'; END IF;"                                \
	"    RETURN OLD;"                                                                          \
	"  END IF;"                                                                                \
	"  IF OLD.status <> 0 OR NEW.id IS DISTINCT FROM OLD.id"                                   \
	"     OR NEW.at_ms IS DISTINCT FROM OLD.at_ms OR NEW.actor IS DISTINCT FROM OLD.actor"     \
	"     OR NEW.role IS DISTINCT FROM OLD.role OR NEW.remote IS DISTINCT FROM OLD.remote"     \
	"     OR NEW.method IS DISTINCT FROM OLD.method OR NEW.path IS DISTINCT FROM OLD.path "    \
	"THEN"                                                                                     \
	"    RAISE EXCEPTION 'audit log is append-only'; END IF;"                                  \
	"  RETURN NEW;"                                                                            \
	"END $$;"                                                                                  \
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"                                    \
	"  FOR EACH ROW EXECUTE FUNCTION audit_guard();"                                           \
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"                                    \
	"  FOR EACH ROW EXECUTE FUNCTION audit_guard();"

static const struct drv_sql_migration migrations[] = {
        /* 1: agents, instruction queue, events, API and enrollment tokens, audit */
        {
                .sql = "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                       "CREATE TABLE agents ("
                       "  id TEXT PRIMARY KEY,"
                       "  public_key BLOB NOT NULL,"
                       "  key_id TEXT NOT NULL,"
                       "  status TEXT NOT NULL CHECK (status IN ('pending','accepted','rejected')),"
                       "  labels TEXT NOT NULL DEFAULT '{}',"
                       "  facts TEXT NOT NULL DEFAULT '{}',"
                       "  releases TEXT NOT NULL DEFAULT '[]',"
                       "  agent_version TEXT NOT NULL DEFAULT '',"
                       "  first_seen_ms INTEGER NOT NULL,"
                       "  last_seen_ms INTEGER NOT NULL,"
                       "  next_seq INTEGER NOT NULL DEFAULT 1,"
                       "  acked_seq INTEGER NOT NULL DEFAULT 0,"
                       "  report_seq INTEGER NOT NULL DEFAULT 0,"
                       "  enrolled_by TEXT NOT NULL DEFAULT '',"
                       "  status_ms INTEGER NOT NULL DEFAULT 0);"
                       "CREATE TABLE instructions ("
                       "  agent_id TEXT NOT NULL REFERENCES agents(id),"
                       "  seq INTEGER NOT NULL,"
                       "  step_id TEXT NOT NULL,"
                       "  deployment_id TEXT NOT NULL DEFAULT '',"
                       "  envelope BLOB NOT NULL,"
                       "  issued_at_ms INTEGER NOT NULL,"
                       "  expires_at_ms INTEGER NOT NULL,"
                       "  state TEXT NOT NULL CHECK (state IN ('queued','sent','acked','expired')),"
                       "  sent_count INTEGER NOT NULL DEFAULT 0,"
                       "  action INTEGER NOT NULL DEFAULT 0,"
                       "  sent_ms INTEGER NOT NULL DEFAULT 0,"
                       "  acked_ms INTEGER NOT NULL DEFAULT 0,"
                       "  PRIMARY KEY (agent_id, seq));"
                       "CREATE INDEX instructions_state ON instructions(state, agent_id);"
                       "CREATE UNIQUE INDEX instructions_step ON instructions(agent_id, step_id);"
                       "CREATE TABLE events ("
                       "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
                       "  at_ms INTEGER NOT NULL,"
                       "  kind TEXT NOT NULL,"
                       "  deployment_id TEXT NOT NULL DEFAULT '',"
                       "  agent_id TEXT NOT NULL DEFAULT '',"
                       "  data TEXT NOT NULL DEFAULT '{}');"
                       "CREATE TABLE api_tokens ("
                       "  name TEXT PRIMARY KEY,"
                       "  role TEXT NOT NULL CHECK (role IN ('viewer','deployer','admin')),"
                       "  hash BLOB NOT NULL,"
                       "  created_ms INTEGER NOT NULL,"
                       "  revoked_ms INTEGER);"
                       "CREATE TABLE enroll_tokens ("
                       "  name TEXT PRIMARY KEY,"
                       "  hash BLOB NOT NULL,"
                       "  created_ms INTEGER NOT NULL,"
                       "  expires_ms INTEGER,"
                       "  revoked_ms INTEGER);"
                       "CREATE TABLE audit ("
                       "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
                       "  at_ms INTEGER NOT NULL,"
                       "  actor TEXT NOT NULL,"
                       "  role TEXT NOT NULL,"
                       "  remote TEXT NOT NULL,"
                       "  method TEXT NOT NULL,"
                       "  path TEXT NOT NULL,"
                       "  status INTEGER NOT NULL,"
                       "  detail TEXT NOT NULL DEFAULT '');",
                .sqlite = "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
                          "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
                          "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
                          "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;",
        },
        /* 2: deployments (deploy_store.c); events by deployment (streams, resume) */
        {
                .sql = "CREATE TABLE deployments ("
                       "  n INTEGER PRIMARY KEY AUTOINCREMENT,"
                       "  id TEXT NOT NULL UNIQUE,"
                       "  name TEXT NOT NULL,"
                       "  version TEXT NOT NULL,"
                       "  actor TEXT NOT NULL DEFAULT '',"
                       "  plan TEXT NOT NULL,"
                       "  seq_state TEXT,"
                       "  extra TEXT NOT NULL DEFAULT '{}',"
                       "  state TEXT NOT NULL,"
                       "  phase TEXT NOT NULL DEFAULT 'prestage',"
                       "  reason TEXT NOT NULL DEFAULT '',"
                       "  failed_hosts INTEGER NOT NULL DEFAULT 0,"
                       "  max_failed_hosts INTEGER NOT NULL DEFAULT 0,"
                       "  view TEXT,"
                       "  created_ms INTEGER NOT NULL,"
                       "  updated_ms INTEGER NOT NULL,"
                       "  finished_ms INTEGER NOT NULL DEFAULT 0);"
                       "CREATE INDEX deployments_active ON deployments(finished_ms, name);"
                       "CREATE INDEX events_deployment ON events(deployment_id, id);",
        },
        /* 3: enrollment (link/store.c): the address a claim came from, labels an
         * accepted agent asked for (an admin applies them), token use limits
         * and label constraints */
        {
                .sql = "ALTER TABLE agents ADD COLUMN peer TEXT NOT NULL DEFAULT '';"
                       "ALTER TABLE agents ADD COLUMN proposed_labels TEXT;"
                       "CREATE INDEX agents_pending_peer ON agents(status, peer);"
                       "ALTER TABLE enroll_tokens ADD COLUMN max_uses INTEGER NOT NULL DEFAULT 0;"
                       "ALTER TABLE enroll_tokens ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;"
                       "ALTER TABLE enroll_tokens ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';",
        },
        /* 4: retention deletes the instructions of a deployment it prunes */
        {
                .sql = "CREATE INDEX instructions_deployment ON instructions(deployment_id);",
        },
        /* 5: audit (model/audit.h): a change's row is written before the change
         * (status 0) and only its status and detail are filled in after; rows
         * of failed authentication (401, 429) are kept to the newest few */
        {
                .sql = "CREATE INDEX audit_status ON audit(status, id);",
                .sqlite = "DROP TRIGGER audit_no_update;"
                          "DROP TRIGGER audit_no_delete;"
                          "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
                          "  WHEN OLD.status <> 0 OR NEW.id IS NOT OLD.id OR NEW.at_ms IS NOT "
                          "OLD.at_ms"
                          "    OR NEW.actor IS NOT OLD.actor OR NEW.role IS NOT OLD.role"
                          "    OR NEW.remote IS NOT OLD.remote OR NEW.method IS NOT OLD.method"
                          "    OR NEW.path IS NOT OLD.path"
                          "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
                          "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
                          "  WHEN OLD.status NOT IN (401, 429)"
                          "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;",
                .pg = PG_AUDIT_GUARD,
        },
        /* 6: the alerts role (api/tokens.h: may only post Alertmanager's webhook) */
        {
                .sql = "CREATE TABLE api_tokens_new ("
                       "  name TEXT PRIMARY KEY,"
                       "  role TEXT NOT NULL CHECK (role IN "
                       "('viewer','deployer','admin','alerts')),"
                       "  hash BLOB NOT NULL,"
                       "  created_ms INTEGER NOT NULL,"
                       "  revoked_ms INTEGER);"
                       "INSERT INTO api_tokens_new(name, role, hash, created_ms, revoked_ms)"
                       "  SELECT name, role, hash, created_ms, revoked_ms FROM api_tokens;"
                       "DROP TABLE api_tokens;"
                       "ALTER TABLE api_tokens_new RENAME TO api_tokens;",
        },
        /* 7: the performance baseline of each release (deploy/deploy_baseline.c):
         * the value of every key metric a plan names, per service, recorded when
         * its deployment succeeds; the next release is compared with the latest
         * row of the same environment, service and metric. Plain SQL: the
         * PostgreSQL engine reads the same text. value NULL: no data. */
        {
                .sql = "CREATE TABLE baselines ("
                       "  deployment_id TEXT NOT NULL,"
                       "  environment TEXT NOT NULL DEFAULT '',"
                       "  service TEXT NOT NULL,"
                       "  metric TEXT NOT NULL,"
                       "  version TEXT NOT NULL,"
                       "  value DOUBLE PRECISION,"
                       "  unit TEXT NOT NULL DEFAULT '',"
                       "  query TEXT NOT NULL DEFAULT '',"
                       "  recorded_ms BIGINT NOT NULL,"
                       "  PRIMARY KEY (deployment_id, service, metric));"
                       "CREATE INDEX baselines_metric ON baselines(environment, service, metric, "
                       "recorded_ms);",
        },
        /* 8: the approver role (api/tokens.h: a deployer that may also approve
         * deployments to environments that require approval) */
        {
                .sql = "CREATE TABLE api_tokens_new ("
                       "  name TEXT PRIMARY KEY,"
                       "  role TEXT NOT NULL CHECK (role IN "
                       "('viewer','deployer','approver','admin','alerts')),"
                       "  hash BLOB NOT NULL,"
                       "  created_ms INTEGER NOT NULL,"
                       "  revoked_ms INTEGER);"
                       "INSERT INTO api_tokens_new(name, role, hash, created_ms, revoked_ms)"
                       "  SELECT name, role, hash, created_ms, revoked_ms FROM api_tokens;"
                       "DROP TABLE api_tokens;"
                       "ALTER TABLE api_tokens_new RENAME TO api_tokens;",
        },
        /* 9: promotion through lifecycles (deploy_store.h, docs/environments.md):
         * the environment a deployment went to, its release (the plan as
         * written, variables not filled in, images pinned by digest: JSON
         * text) and the release's id (a hash of it), and the deployment a
         * promotion copied it from. Plain SQL: the PostgreSQL engine reads
         * the same text. */
        {
                .sql = "ALTER TABLE deployments ADD COLUMN environment TEXT NOT NULL DEFAULT '';"
                       "ALTER TABLE deployments ADD COLUMN release_id TEXT NOT NULL DEFAULT '';"
                       "ALTER TABLE deployments ADD COLUMN release_plan TEXT;"
                       "ALTER TABLE deployments ADD COLUMN promoted_from TEXT NOT NULL DEFAULT '';"
                       "CREATE INDEX deployments_release ON deployments(environment, release_id, "
                       "state);",
        },
        /* 10: the leader lease of an HA group on PostgreSQL (ha/ha_lease.h): one
         * row; expires_ms on the database's clock. Unused with SQLite. */
        {
                .sql = "CREATE TABLE leader_lease ("
                       "  name TEXT PRIMARY KEY,"
                       "  holder TEXT NOT NULL,"
                       "  url TEXT NOT NULL DEFAULT '',"
                       "  epoch INTEGER NOT NULL,"
                       "  expires_ms INTEGER NOT NULL);",
        },
        /* 11: blue-green across host sets (deploy/deploy_live.h): which set of
         * a service takes its traffic, per environment, written when a
         * deployment's switch (or a rollback's switch back) completes; the
         * next release goes to the other set. Plain SQL for every engine. */
        {
                .sql = "CREATE TABLE live_sets ("
                       "  environment TEXT NOT NULL DEFAULT '',"
                       "  service TEXT NOT NULL,"
                       "  set_name TEXT NOT NULL,"
                       "  deployment_id TEXT NOT NULL,"
                       "  updated_ms BIGINT NOT NULL,"
                       "  PRIMARY KEY (environment, service));",
        },
        /* 12: a deployment's host and hook records in rows of their own
         * (deploy/deploy_store.h): the engine writes the records a transition
         * changed, not every host's at every save. section is "hosts" or
         * "hooks", key the record's key in it, data its JSON text. The
         * targets (every host of the plan, fixed at creation) get a column
         * written once. Rows go when the deployment ends (its final view
         * holds them). Plain SQL for every engine. */
        {
                .sql = "CREATE TABLE deployment_records ("
                       "  deployment_id TEXT NOT NULL,"
                       "  section TEXT NOT NULL,"
                       "  key TEXT NOT NULL,"
                       "  data TEXT NOT NULL,"
                       "  PRIMARY KEY (deployment_id, section, key));"
                       "ALTER TABLE deployments ADD COLUMN targets TEXT;",
        },
        /* 13: the order of an agent's release lists (link/store.h): the
         * report_seq of the Report, or the Poll's releases_seq, whose list was
         * stored last; an older list is not stored over it. 0: none known. */
        {
                .sql = "ALTER TABLE agents ADD COLUMN releases_seq INTEGER NOT NULL DEFAULT 0;",
        },
};

const struct drv_sql_migration *drv_schema_migrations(size_t *n)
{
	*n = sizeof(migrations) / sizeof(migrations[0]);
	return migrations;
}
