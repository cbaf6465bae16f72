/*
 * schema.c: the coordinator database schema, as user_version migrations
 * (see common/db.h). Append new migrations at the end; never edit one that
 * has shipped.
 */
#include "schema.h"

static const char *const migrations[] = {
        /* 1: agents, instruction queue, events, API and enrollment tokens, audit */
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
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
        "  detail TEXT NOT NULL DEFAULT '');"
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
        "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
        "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;",
};

const char *const *drv_schema_migrations(size_t *n)
{
	*n = sizeof(migrations) / sizeof(migrations[0]);
	return migrations;
}
