/*
 * store.h: the coordinator's SQLite store for the link: agents, the
 * instruction queue and enrollment token hashes.
 *
 * The store has no lock of its own: droverd calls it from the core, which
 * serializes every change (see core.h). Offline tools (droverd init,
 * droverd queue, droverd enroll-token) open their own connection; SQLite's
 * WAL and busy timeout make that safe, and every multi-row change runs in a
 * transaction.
 *
 * Ownership: strings in the structs below are copied into fixed buffers;
 * blobs returned (struct store_instr.env) are malloc'd and freed by
 * store_instr_clear().
 */
#ifndef DRV_STORE_H
#define DRV_STORE_H

#include <jansson.h>
#include "sqldb.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "keys.h"
#include "secret.h"

struct store;

enum agent_status { AGENT_PENDING, AGENT_ACCEPTED, AGENT_REJECTED };

const char *store_agent_status_name(enum agent_status st);
int store_agent_status_parse(const char *name, enum agent_status *out);

/* What the link needs to know about an agent. */
struct store_agent {
	char id[DRV_AGENT_ID_MAX + 1];
	struct drv_pubkey key;
	enum agent_status status;
	int64_t first_seen_ms, last_seen_ms, status_ms;
	uint64_t next_seq;   /* the sequence number the next instruction gets */
	uint64_t acked_seq;  /* highest sequence the agent said it applied */
	uint64_t report_seq; /* highest report sequence processed */
	char enrolled_by[64];
	char peer[64]; /* address its first Hello came from (pending caps) */
};

/* What the API lists; the JSON strings are valid during the callback only. */
struct store_agent_row {
	const struct store_agent *agent;
	const char *labels_json, *facts_json, *releases_json, *agent_version;
	const char *proposed_labels_json; /* NULL: none waiting for an admin */
};

/* Hello data kept per agent (JSON texts made by the caller). releases_seq:
 * the Hello's number of its list, as a Poll's (store_agent_set_releases). */
struct store_hello {
	const char *labels_json, *facts_json, *releases_json, *agent_version;
	uint64_t releases_seq;
};

int store_open(const char *path, struct store **out);
/* Group several changes into one transaction (one commit, not one per
 * statement). Nests: inside another transaction it is a savepoint. After a
 * failed store_begin nothing is to be ended; otherwise end with exactly one
 * store_commit or store_rollback. */
int store_begin(struct store *s);
/* Statements prepared and run on s since it was opened (tests, timelines). */
uint64_t store_statements(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);
void store_close(struct store *s);
struct drv_sql *store_db(struct store *s);

typedef void (*store_id_fn)(void *arg, const char *agent_id);
typedef void (*store_claim_fn)(void *arg, const char *agent_id, const char *key_id);

/* ---- agents ---- */
/* DRV_ENOENT if unknown. */
int store_agent_get(struct store *s, const char *id, struct store_agent *out);
/* The next sequence number of each agent named in ids_json (a JSON array
 * of ids, bound as one value: one statement for many agents); unknown ids
 * are left out. */
typedef void (*store_next_seq_fn)(void *arg, const char *agent_id, uint64_t next_seq);
int store_agent_next_seqs(struct store *s, const char *ids_json, store_next_seq_fn fn, void *arg);
/* A new agent; DRV_EEXIST if the id is taken. */
int store_agent_create(struct store *s, const struct store_agent *a, const struct store_hello *h);
/* labels_json NULL keeps the agent's labels. The releases follow the rule
 * of store_agent_set_releases with h->releases_seq: a list older than the
 * stored one is not written (*stale true, when stale is not NULL), the rest
 * of the Hello is. */
int store_agent_update_hello(struct store *s, const char *id, const struct store_hello *h,
                             int64_t now_ms, bool *stale);
/* The agent's labels and the labels it proposed (NULL if none); malloc'd. */
int store_agent_labels(struct store *s, const char *id, char **labels, char **proposed);
/* Remember (or, with NULL, forget) labels an accepted agent asked for. */
int store_agent_propose_labels(struct store *s, const char *id, const char *proposed_json);
/* Make the proposed labels the agent's labels; DRV_ENOENT if none. */
int store_agent_apply_proposed(struct store *s, const char *id);
/* Give a pending claim to another key (a valid enrollment token). The
 * order of release lists starts again (releases_seq 0): the old key's
 * Hellos numbered them, not the new one's. */
int store_agent_rekey(struct store *s, const struct store_agent *a);
/* Pending agents whose first Hello came from peer. */
int store_agent_count_peer(struct store *s, const char *peer, size_t *out);
/* Delete pending agents first seen before before_ms (up to 256 a call, the
 * oldest first); fn hears each deleted claim's agent id and key id.
 * DRV_EDB (logged) if they cannot be listed. */
int store_agent_expire_pending(struct store *s, int64_t before_ms, store_claim_fn fn, void *arg);
int store_agent_set_status(struct store *s, const char *id, enum agent_status st, const char *by,
                           int64_t now_ms);
int store_agent_touch(struct store *s, const char *id, int64_t now_ms);
/* Record report_seq as processed; DRV_EREPLAY if it is not above the last. */
int store_agent_report_seq(struct store *s, const char *id, uint64_t report_seq);
/* A report in one write of the agent's row: its report_seq as above
 * (DRV_EREPLAY), and with acked > 0 the acknowledgement of the agent's
 * instructions up to acked as store_instr_ack_upto (*n_acked: how many). */
int store_agent_report(struct store *s, const char *id, uint64_t report_seq, uint64_t acked,
                       int64_t now_ms, size_t *n_acked);
/* The reports of a group-commit batch, one statement per table for all of
 * them: rows_json is a JSON array of [agent_id, report_seq, acked], at most
 * one per agent, each written as store_agent_report would (acks false: no
 * row's acked is above 0, the instructions are not looked at). DRV_EREPLAY if
 * any row's report_seq is not above the stored one (or its agent is gone):
 * then some rows may be written, and the caller rolls back and writes the
 * reports one by one. acked (may be NULL) hears the agent of every
 * instruction acknowledged. */
int store_agent_reports(struct store *s, const char *rows_json, size_t n_rows, bool acks,
                        int64_t now_ms, store_id_fn acked, void *arg);
/* Make sure the next instruction sequence is above seq (an agent that has
 * applied more than this database remembers, e.g. after a restore). */
int store_agent_seq_floor(struct store *s, const char *id, uint64_t seq);
/* Replace the agent's releases of one service with releases_json (a JSON
 * array in the Hello format, hello_releases_json), from a step's report
 * numbered report_seq. Ordering (docs/protocol.md, "Release lists"): the
 * row keeps releases_seq, the number of the message whose list it stored
 * last; a report_seq not above it is older than that list and changes
 * nothing (*stale true, when stale is not NULL); else releases_seq becomes
 * report_seq. In a transaction it takes no savepoint of its own: it is the
 * caller's part, which the caller rolls back if this fails. */
int store_agent_merge_releases(struct store *s, const char *id, const char *service,
                               const char *releases_json, uint64_t report_seq, bool *stale);
/* Replace all the agent's releases (a Poll's list; written only when it
 * differs from what is stored). releases_seq: the Poll's (the agent's last
 * report_seq when it read the list); 0 (an older agent): written as is and
 * the row's releases_seq kept. Else a list below the row's releases_seq is
 * older than the stored one and is not written (*stale true). */
int store_agent_set_releases(struct store *s, const char *id, const char *releases_json,
                             uint64_t releases_seq, bool *stale);
/* Forget an agent and its instructions (re-keying a host). DRV_ENOENT if unknown. */
int store_agent_delete(struct store *s, const char *id);
typedef int (*store_agent_fn)(void *arg, const struct store_agent_row *row);
/* Every agent, ordered by id; a callback result other than DRV_OK stops. */
int store_agent_foreach(struct store *s, store_agent_fn fn, void *arg);
int store_agent_count(struct store *s, enum agent_status st, size_t *out);
/* What matching a plan's hosts reads of an agent (deploy_hosts.h), valid
 * during the callback only: status is the stored name (accepted, ...). */
struct store_agent_brief {
	const char *id, *status, *labels_json, *releases_json, *agent_version;
};
typedef int (*store_brief_fn)(void *arg, const struct store_agent_brief *b);
/* Every agent, ordered by id, those columns alone (one statement; no key,
 * facts or counters read); a callback result other than DRV_OK stops. */
int store_agent_brief_foreach(struct store *s, store_brief_fn fn, void *arg);

/* ---- instructions ---- */
/* Make the signed envelope for sequence number seq; *env is malloc'd. */
typedef int (*store_seal_fn)(void *arg, uint64_t seq, uint8_t **env, size_t *len);

struct store_enqueue {
	const char *agent_id, *step_id, *deployment_id;
	int action;
	int64_t issued_at_ms, expires_at_ms;
	store_seal_fn seal;
	void *seal_arg;
	bool accepted_only; /* DRV_ESTATE unless the agent is accepted */
};

/* Assign the agent's next sequence number, seal and queue, in one
 * transaction. DRV_ENOENT if the agent is unknown (DRV_ESTATE if not
 * accepted and q->accepted_only), else DRV_EEXIST (and *seq_out) if the step
 * id is already queued for this agent: queueing is idempotent by step id. */
int store_instr_enqueue(struct store *s, const struct store_enqueue *q, uint64_t *seq_out);
/* The JSON text of one statement of store_instr_enqueue_many's insert is
 * at most this (a chunk of large envelopes takes several). */
#define STORE_MANY_JSON_MAX (4u << 20)
/* store_instr_enqueue for each of n (seqs[i], rcs[i] its outcome). On
 * PostgreSQL a chunk of distinct agents takes one check and one insert
 * (with the agents' next_seq; one more per STORE_MANY_JSON_MAX of JSON) in
 * one savepoint; if they fail (a unique violation: another writer's row) it
 * is undone and the chunk queued row by row instead, unless its commit was
 * fenced (DRV_EFENCED for every row). SQLite queues row by row. */
void store_instr_enqueue_many(struct store *s, const struct store_enqueue *q, size_t n,
                              uint64_t *seqs, int *rcs);

struct store_instr {
	uint64_t seq;
	char step_id[256];
	uint8_t *env;
	size_t env_len;
	int64_t expires_at_ms;
	int64_t sent_count;
	bool more; /* store_instr_take: another one is deliverable after it */
};

void store_instr_clear(struct store_instr *in);
/* The lowest unacknowledged, unexpired instruction; DRV_ENOENT if none. */
int store_instr_next(struct store *s, const char *agent_id, int64_t now_ms,
                     struct store_instr *out);
int store_instr_mark_sent(struct store *s, const char *agent_id, uint64_t seq, int64_t now_ms);
/* The instruction store_instr_next would give, marked sent as
 * store_instr_mark_sent does, in one statement (a write: inside the
 * caller's transaction), and whether another waits behind it (out->more);
 * DRV_ENOENT if none. */
int store_instr_take(struct store *s, const char *agent_id, int64_t now_ms,
                     struct store_instr *out);
/* store_instr_take for each agent of ids_json (a JSON array of ids) in one
 * statement: fn hears each agent that had a deliverable instruction, with
 * it (fn may take in->env, leaving NULL; the rest is cleared after it);
 * agents not heard had none. A write, as store_instr_take. DRV_EFENCED on
 * PostgreSQL when the lease is lost. */
typedef void (*store_taken_fn)(void *arg, const char *agent_id, struct store_instr *in);
int store_instr_take_many(struct store *s, const char *ids_json, int64_t now_ms, store_taken_fn fn,
                          void *arg);
/* Instructions up to seq that were sent are acknowledged; *n_acked says
 * how many changed. The agent's acked_seq rises to seq and its next
 * sequence above it (as store_agent_seq_floor), in the same write. */
int store_instr_ack_upto(struct store *s, const char *agent_id, uint64_t seq, int64_t now_ms,
                         size_t *n_acked);
/* Expire what is past expires_at; fn (may be NULL) hears about each. */
typedef void (*store_expired_fn)(void *arg, const char *agent_id, uint64_t seq,
                                 const char *step_id);
int store_instr_expire(struct store *s, int64_t now_ms, store_expired_fn fn, void *arg,
                       size_t *n_expired);
/* Agents with instructions queued but never sent (offline tools queue). */
int store_instr_queued_agents(struct store *s, store_id_fn fn, void *arg);
/* "queued", "sent", "acked", "expired"; DRV_ENOENT if no such instruction. */
int store_instr_state(struct store *s, const char *agent_id, uint64_t seq, char out[16]);

/* ---- tokens ---- */
struct store_token {
	const char *name;
	int64_t expires_ms; /* 0 = never */
	int64_t max_uses;   /* 0 = unlimited */
	const char *labels; /* label rules (enroll_rules.h), NULL = none */
};
/* DRV_EEXIST if the name is taken. */
int store_enroll_token_add(struct store *s, const struct store_token *t,
                           const uint8_t hash[DRV_SECRET_HASH_LEN], int64_t now_ms);
/* A new random token (written to token, at most cap bytes) stored under t's
 * name by its hash: store_enroll_token_add's errors; token is zeroed on
 * failure. */
int store_enroll_token_create(struct store *s, const struct store_token *t, int64_t now_ms,
                              char *token, size_t cap);
/* DRV_OK and the token's name if the token is valid now for an agent with
 * these labels (JSON); the use is counted. DRV_EPERM if not, with the reason
 * (unknown, revoked, expired, used up, a label it does not allow) in why. */
int store_enroll_token_use(struct store *s, const char *token, const char *labels_json,
                           int64_t now_ms, char name_out[64], char *why, size_t why_len);
/* DRV_ENOENT if no such token; revoking twice is no error. */
int store_enroll_token_revoke(struct store *s, const char *name, int64_t now_ms);
/* [{"name", "created_ms", "expires_ms", "revoked_ms", "max_uses", "uses",
 *   "labels", "state": active|expired|used-up|revoked}] (new reference). */
int store_enroll_token_list(struct store *s, int64_t now_ms, json_t **out);

#endif
