/*
 * linkprobe.c: a hostile peer for the control-link integration tests. It
 * speaks NNG and the envelope format directly, so it can send what the real
 * daemons never would.
 *
 *   linkprobe attack --url URL --agent-id ID --agent-key FILE
 *       Plays a bad agent against a real droverd (REQ): garbage, an
 *       oversized message, a forged key, a forged signature, a stale poll, a
 *       replayed report, a poll from a pending agent, an id bound to another
 *       key, a wrong body type, another protocol version. Each must come back
 *       as a Reject with the expected reason. Prints one line per case; exits
 *       0 only if every case got its reason.
 *
 *       Then the session start: a Hello signed with the agent's key but
 *       without a fresh nonce (as a captured one) is only challenged; a proven
 *       Hello of a pending probe agent, replayed on another connection, is
 *       challenged too; --flood N proven and N unproven Hellos of the
 *       agent's id with another key are all refused (the test then counts
 *       what they wrote).
 *
 *   linkprobe claim --url URL --agent-id ID [--count N] [--token FILE]
 *       Claims ID (and ID-2 .. ID-N) with a new key through a full session
 *       start; prints "claim ID welcome STATUS" or "claim ID reject REASON".
 *
 *   linkprobe fake-coordinator --listen URL --coord-key FILE --agent-id ID
 *                              --out FILE [--timeout SECONDS]
 *       Plays a bad coordinator against a real drover-agent (REP): answers
 *       Hello with Welcome, then answers polls with a script: a valid
 *       instruction, its replay, a forged key, a forged signature, another
 *       agent's instruction, an expired one, an oversized message, garbage,
 *       an image without a digest, and a last valid instruction. The valid
 *       ones append their step id to FILE (so a test sees what ran). Answers
 *       reports with Ack; exits 0 when the last instruction's result arrived.
 *       Before that it relays replies meant for someone else: a Welcome for
 *       another agent, an Ack of the agent's report naming another agent, a
 *       Reject naming another request; the agent must ignore each (say Hello
 *       again, resend the report, keep polling), and the fake prints an "ok"
 *       line for each.
 */
#include <getopt.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "envelope.h"
#include "err.h"
#include "keys.h"
#include "watchdog.h"

/* NNG 1.5's nng_close can hang when a peer dials while it closes (the
 * daemons bound it the same way: link.c, uplink.c); the probe is about to
 * exit, so a close that does not return in 2 s is left behind. */
static bool close_abandoned; /* then nng_fini would wait for it: skip it */

static void close_now(void *arg)
{
	nng_close(*(nng_socket *)arg);
}

static void close_sock(nng_socket s)
{
	nng_socket *kept = malloc(sizeof(*kept)); /* outlives a close left running */

	if (kept == NULL) {
		nng_close(s);
		return;
	}
	*kept = s;
	if (drv_run_within(2000, "closing the probe's NNG socket", close_now, kept) == DRV_OK)
		free(kept);
	else {
		close_abandoned = true;
		fprintf(stderr, "linkprobe: nng_close did not return in 2 s; exiting without it\n");
	}
}

#define BIG (1536u << 10)

static int fail(const char *what, int rv)
{
	fprintf(stderr, "linkprobe: %s: %s\n", what, nng_strerror(rv));
	return 1;
}

/* ---- building envelopes ---- */

static int seal(const struct drv_keypair *kp, const char *sender, Drover__BodyType type,
                const ProtobufCMessage *body, bool self_key, nng_msg **out)
{
	uint8_t *buf;
	size_t len;
	int rc = drv_env_seal(kp, sender, type, body, self_key, &buf, &len);

	if (rc != DRV_OK)
		return rc;
	if (nng_msg_alloc(out, 0) != 0 || nng_msg_append(*out, buf, len) != 0)
		rc = DRV_ENOMEM;
	free(buf);
	return rc;
}

static nng_msg *raw_msg(const void *data, size_t len)
{
	nng_msg *m;

	if (nng_msg_alloc(&m, 0) != 0)
		return NULL;
	if (nng_msg_append(m, data, len) != 0) {
		nng_msg_free(m);
		return NULL;
	}
	return m;
}

static nng_msg *garbage(size_t len)
{
	uint8_t *buf = malloc(len);
	nng_msg *m;

	if (buf == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	m = raw_msg(buf, len);
	free(buf);
	return m;
}

/* Flip one byte of the signature inside a sealed message. */
static nng_msg *corrupt_signature(nng_msg *m)
{
	Drover__Envelope *env = drover__envelope__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	nng_msg *out = NULL;
	uint8_t *buf;
	size_t len;

	nng_msg_free(m);
	if (env == NULL || env->signature.len == 0)
		return NULL;
	env->signature.data[0] ^= 0x55;
	len = drover__envelope__get_packed_size(env);
	buf = malloc(len);
	if (buf != NULL) {
		drover__envelope__pack(env, buf);
		out = raw_msg(buf, len);
		free(buf);
	}
	drover__envelope__free_unpacked(env, NULL);
	return out;
}

/* ---- attack: a bad agent against droverd ---- */

struct attack {
	nng_socket sock;
	const char *id;
	struct drv_keypair agent, stranger;
	int failures;
	uint8_t nonce[64]; /* the last Welcome's */
	size_t nonce_len;
	bool challenge;
	long flood;
};

static nng_msg *poll_msg(const struct drv_keypair *kp, const char *id, int64_t sent_at)
{
	Drover__Poll p = DROVER__POLL__INIT;
	nng_msg *m = NULL;

	p.agent_id = (char *)id;
	p.sent_at_ms = sent_at;
	p.nonce = (uint64_t)drv_mono_ms();
	seal(kp, id, DROVER__BODY_TYPE__BODY_POLL, &p.base, false, &m);
	return m;
}

static nng_msg *hello_full(const struct drv_keypair *kp, const char *id, const char *label,
                           const uint8_t *nonce, size_t nonce_len, const char *token)
{
	Drover__Hello h = DROVER__HELLO__INIT;
	Drover__KeyValue kv = DROVER__KEY_VALUE__INIT, *kvp = &kv;
	nng_msg *m = NULL;

	if (label != NULL) {
		kv.key = "tier";
		kv.value = (char *)label;
		h.labels = &kvp;
		h.n_labels = 1;
	}
	h.nonce.data = (uint8_t *)nonce;
	h.nonce.len = nonce_len;
	h.enroll_token = (char *)token;
	h.agent_id = (char *)id;
	h.public_key.data = (uint8_t *)kp->pk;
	h.public_key.len = DRV_PK_LEN;
	h.agent_version = DROVER_VERSION "-linkprobe";
	h.proto_major = DRV_PROTO_MAJOR;
	seal(kp, id, DROVER__BODY_TYPE__BODY_HELLO, &h.base, true, &m);
	return m;
}

static nng_msg *report_msg(const struct drv_keypair *kp, const char *id, uint64_t seq)
{
	Drover__Report r = DROVER__REPORT__INIT;
	nng_msg *m = NULL;

	r.agent_id = (char *)id;
	r.report_seq = seq;
	r.result = DROVER__STEP_RESULT__STEP_STATUS;
	r.message = "linkprobe";
	r.sent_at_ms = drv_wall_ms();
	seal(kp, id, DROVER__BODY_TYPE__BODY_REPORT, &r.base, false, &m);
	return m;
}

static nng_msg *wrong_version(const struct drv_keypair *kp, const char *id)
{
	nng_msg *m = poll_msg(kp, id, drv_wall_ms());
	Drover__Envelope *env;
	uint8_t buf[4096];
	size_t len;

	if (m == NULL)
		return NULL;
	env = drover__envelope__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	nng_msg_free(m);
	if (env == NULL)
		return NULL;
	env->version = DRV_PROTO_MAJOR + 1;
	len = drover__envelope__get_packed_size(env);
	m = len <= sizeof(buf) ? (drover__envelope__pack(env, buf), raw_msg(buf, len)) : NULL;
	drover__envelope__free_unpacked(env, NULL);
	return m;
}

/* Send m, return the reply's body type and (for a Reject) its reason. */
static int exchange(struct attack *a, nng_msg *m, Drover__BodyType *type,
                    Drover__RejectReason *reason)
{
	Drover__Envelope *env;
	Drover__Reject *rj;
	nng_msg *reply;
	int rv;

	if (m == NULL)
		return NNG_ENOMEM;
	rv = nng_sendmsg(a->sock, m, 0);
	if (rv != 0) {
		nng_msg_free(m);
		return rv;
	}
	rv = nng_recvmsg(a->sock, &reply, 0);
	if (rv != 0)
		return rv;
	env = drover__envelope__unpack(NULL, nng_msg_len(reply), nng_msg_body(reply));
	nng_msg_free(reply);
	if (env == NULL)
		return NNG_EPROTO;
	*type = env->type;
	*reason = DROVER__REJECT_REASON__REJECT_UNSPECIFIED;
	if (env->type == DROVER__BODY_TYPE__BODY_REJECT) {
		rj = drover__reject__unpack(NULL, env->body.len, env->body.data);
		if (rj != NULL) {
			*reason = rj->reason;
			drover__reject__free_unpacked(rj, NULL);
		}
	}
	if (env->type == DROVER__BODY_TYPE__BODY_WELCOME) {
		Drover__Welcome *w = drover__welcome__unpack(NULL, env->body.len, env->body.data);
		if (w != NULL) {
			a->challenge = w->challenge;
			a->nonce_len = w->nonce.len <= sizeof(a->nonce) ? w->nonce.len : 0;
			memcpy(a->nonce, w->nonce.data, a->nonce_len);
			*reason = (Drover__RejectReason)w->status; /* the status, for Welcome */
			drover__welcome__free_unpacked(w, NULL);
		}
	}
	drover__envelope__free_unpacked(env, NULL);
	return 0;
}

/* A whole session start: Hello, the challenge, Hello with its nonce. The
 * final reply's type and reason (or Welcome status). *sent keeps a copy of
 * the proven Hello when not NULL. */
static int session(struct attack *a, const struct drv_keypair *kp, const char *id,
                   const char *label, const char *token, Drover__BodyType *type,
                   Drover__RejectReason *reason, nng_msg **sent)
{
	nng_msg *m;
	int rv = exchange(a, hello_full(kp, id, label, NULL, 0, token), type, reason);

	if (rv != 0 || *type != DROVER__BODY_TYPE__BODY_WELCOME || !a->challenge)
		return rv != 0 ? rv : NNG_EPROTO;
	m = hello_full(kp, id, label, a->nonce, a->nonce_len, token);
	if (m != NULL && sent != NULL && nng_msg_dup(sent, m) != 0)
		*sent = NULL;
	return exchange(a, m, type, reason);
}

/* One case: m must be answered with a Reject of the given reason (or, with
 * want_type set, with that body type). */
static void expect(struct attack *a, const char *name, nng_msg *m, Drover__BodyType want_type,
                   Drover__RejectReason want)
{
	Drover__BodyType type = 0;
	Drover__RejectReason reason = 0;
	int rv = exchange(a, m, &type, &reason);
	bool ok = rv == 0 && type == want_type &&
	          (want_type != DROVER__BODY_TYPE__BODY_REJECT || reason == want);

	printf("%s %s: reply type %d reason %d (want type %d reason %d)%s%s\n", ok ? "ok" : "FAIL",
	       name, (int)type, (int)reason, (int)want_type, (int)want, rv ? " error " : "",
	       rv ? nng_strerror(rv) : "");
	fflush(stdout);
	if (!ok)
		a->failures++;
}

/* The same, for a whole session start. */
static void expect_session(struct attack *a, const char *name, const struct drv_keypair *kp,
                           const char *id, const char *label, Drover__BodyType want_type,
                           Drover__RejectReason want)
{
	Drover__BodyType type = 0;
	Drover__RejectReason reason = 0;
	int rv = session(a, kp, id, label, NULL, &type, &reason, NULL);
	bool ok = rv == 0 && type == want_type &&
	          (want_type != DROVER__BODY_TYPE__BODY_REJECT || reason == want);

	printf("%s %s: reply type %d reason %d (want type %d reason %d)%s%s\n", ok ? "ok" : "FAIL",
	       name, (int)type, (int)reason, (int)want_type, (int)want, rv ? " error " : "",
	       rv ? nng_strerror(rv) : "");
	fflush(stdout);
	if (!ok)
		a->failures++;
}

/* m must be answered with a challenge Welcome (nothing recorded). */
static void expect_challenge(struct attack *a, const char *name, nng_msg *m)
{
	Drover__BodyType type = 0;
	Drover__RejectReason reason = 0;
	int rv = exchange(a, m, &type, &reason);
	bool ok = rv == 0 && type == DROVER__BODY_TYPE__BODY_WELCOME && a->challenge;

	printf("%s %s: reply type %d challenge %d%s%s\n", ok ? "ok" : "FAIL", name, (int)type,
	       (int)a->challenge, rv ? " error " : "", rv ? nng_strerror(rv) : "");
	fflush(stdout);
	if (!ok)
		a->failures++;
}

/* Captured Hellos replayed, and a flood of Hellos for a bound id. */
static void run_replays(struct attack *a, const struct drv_keypair *pending, const char *pid)
{
	Drover__BodyType type;
	Drover__RejectReason reason;
	nng_msg *proven = NULL;
	nng_socket first = a->sock;
	long refused = 0;

	/* the agent's own Hello (its key, other labels) without a fresh nonce,
	 * as captured from an earlier session */
	expect_challenge(a, "captured-hello", hello_full(&a->agent, a->id, "evil", NULL, 0, NULL));
	/* a proven Hello of the pending probe agent (tier=b), then one with
	 * tier=c; the first replayed on another connection changes nothing */
	if (session(a, pending, pid, "b", NULL, &type, &reason, &proven) != 0 || proven == NULL)
		a->failures++;
	if (session(a, pending, pid, "c", NULL, &type, &reason, NULL) != 0)
		a->failures++;
	if (nng_req0_open(&a->sock) != 0 || nng_socket_set_ms(a->sock, NNG_OPT_RECVTIMEO, 10000) ||
	    nng_dial(a->sock, getenv("LINKPROBE_URL"), NULL, 0) != 0) {
		a->failures++;
		nng_msg_free(proven);
	} else {
		expect_challenge(a, "replayed-proven-hello", proven);
		close_sock(a->sock);
	}
	a->sock = first;
	for (long i = 0; i < a->flood; i++) {
		if (exchange(a, hello_full(&a->stranger, a->id, "evil", NULL, 0, NULL), &type,
		             &reason) == 0 &&
		    type == DROVER__BODY_TYPE__BODY_WELCOME && a->challenge)
			refused++;
		if (exchange(a,
		             hello_full(&a->stranger, a->id, "evil", a->nonce, a->nonce_len, NULL),
		             &type, &reason) == 0 &&
		    type == DROVER__BODY_TYPE__BODY_REJECT &&
		    reason == DROVER__REJECT_REASON__REJECT_ID_TAKEN)
			refused++;
	}
	printf("%s flood: %ld of %ld Hellos challenged or refused\n",
	       refused == 2 * a->flood ? "ok" : "FAIL", refused, 2 * a->flood);
	if (refused != 2 * a->flood)
		a->failures++;
}

static void run_attack(struct attack *a)
{
	const Drover__BodyType REJ = DROVER__BODY_TYPE__BODY_REJECT;
	struct drv_keypair pending;
	char pending_id[64];
	nng_msg *m;

	expect(a, "garbage", garbage(200), REJ, DROVER__REJECT_REASON__REJECT_MALFORMED);
	expect(a, "oversized", garbage(BIG), REJ, DROVER__REJECT_REASON__REJECT_TOO_LARGE);
	expect(a, "forged-key", poll_msg(&a->stranger, a->id, drv_wall_ms()), REJ,
	       DROVER__REJECT_REASON__REJECT_UNKNOWN_KEY);
	m = corrupt_signature(poll_msg(&a->agent, a->id, drv_wall_ms()));
	expect(a, "forged-signature", m, REJ, DROVER__REJECT_REASON__REJECT_BAD_SIGNATURE);
	expect(a, "stale-poll", poll_msg(&a->agent, a->id, drv_wall_ms() - 3600 * 1000), REJ,
	       DROVER__REJECT_REASON__REJECT_EXPIRED);
	expect(a, "replayed-report", report_msg(&a->agent, a->id, 1), REJ,
	       DROVER__REJECT_REASON__REJECT_REPLAY);
	expect_session(a, "id-taken", &a->stranger, a->id, NULL, REJ,
	               DROVER__REJECT_REASON__REJECT_ID_TAKEN);
	drv_keypair_generate(&pending);
	snprintf(pending_id, sizeof(pending_id), "probe-%s", pending.id);
	expect_session(a, "pending-hello", &pending, pending_id, "a",
	               DROVER__BODY_TYPE__BODY_WELCOME, 0);
	expect(a, "pending-poll", poll_msg(&pending, pending_id, drv_wall_ms()), REJ,
	       DROVER__REJECT_REASON__REJECT_NOT_ACCEPTED);
	expect(a, "pending-report", report_msg(&pending, pending_id, 1), REJ,
	       DROVER__REJECT_REASON__REJECT_NOT_ACCEPTED);
	m = NULL;
	{
		Drover__Idle idle = DROVER__IDLE__INIT;
		seal(&a->agent, a->id, DROVER__BODY_TYPE__BODY_IDLE, &idle.base, false, &m);
	}
	expect(a, "wrong-type", m, REJ, DROVER__REJECT_REASON__REJECT_MALFORMED);
	expect(a, "other-version", wrong_version(&a->agent, a->id), REJ,
	       DROVER__REJECT_REASON__REJECT_VERSION);
	run_replays(a, &pending, pending_id);
	drv_keypair_wipe(&pending);
}

static int cmd_attack(int argc, char **argv)
{
	static const struct option longopts[] = {{"url", required_argument, NULL, 'u'},
	                                         {"agent-id", required_argument, NULL, 'i'},
	                                         {"agent-key", required_argument, NULL, 'k'},
	                                         {"flood", required_argument, NULL, 'f'},
	                                         {NULL, 0, NULL, 0}};
	const char *url = NULL, *key = NULL;
	struct attack a = {0};
	int c, rv;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'u')
			url = optarg;
		else if (c == 'i')
			a.id = optarg;
		else if (c == 'k')
			key = optarg;
		else if (c == 'f')
			a.flood = atol(optarg);
		else
			return 2;
	}
	if (url == NULL || a.id == NULL || key == NULL)
		return 2;
	setenv("LINKPROBE_URL", url, 1);
	if (drv_keypair_load(key, &a.agent) != DRV_OK ||
	    drv_keypair_generate(&a.stranger) != DRV_OK) {
		fprintf(stderr, "linkprobe: cannot load %s\n", key);
		return 1;
	}
	if ((rv = nng_req0_open(&a.sock)) != 0 ||
	    (rv = nng_socket_set_ms(a.sock, NNG_OPT_RECVTIMEO, 10000)) != 0 ||
	    (rv = nng_socket_set_ms(a.sock, NNG_OPT_SENDTIMEO, 10000)) != 0 ||
	    (rv = nng_socket_set_size(a.sock, NNG_OPT_RECVMAXSZ, 8u << 20)) != 0 ||
	    (rv = nng_dial(a.sock, url, NULL, 0)) != 0)
		return fail("dial", rv);
	run_attack(&a);
	close_sock(a.sock);
	drv_keypair_wipe(&a.agent);
	drv_keypair_wipe(&a.stranger);
	printf("%s: %d failures\n", a.failures ? "FAIL" : "ok", a.failures);
	return a.failures ? 1 : 0;
}

/* ---- claim: take ids with a new key ---- */

static int cmd_claim(int argc, char **argv)
{
	static const struct option longopts[] = {{"url", required_argument, NULL, 'u'},
	                                         {"agent-id", required_argument, NULL, 'i'},
	                                         {"count", required_argument, NULL, 'n'},
	                                         {"label", required_argument, NULL, 'l'},
	                                         {NULL, 0, NULL, 0}};
	const char *url = NULL, *label = NULL;
	struct attack a = {0};
	long n = 1;
	int c, rv;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'u': url = optarg; break;
		case 'i': a.id = optarg; break;
		case 'n': n = atol(optarg); break;
		case 'l': label = optarg; break;
		default: return 2;
		}
	}
	if (url == NULL || a.id == NULL || n < 1 || drv_keypair_generate(&a.stranger) != DRV_OK)
		return 2;
	if ((rv = nng_req0_open(&a.sock)) != 0 ||
	    (rv = nng_socket_set_ms(a.sock, NNG_OPT_RECVTIMEO, 10000)) != 0 ||
	    (rv = nng_dial(a.sock, url, NULL, 0)) != 0)
		return fail("dial", rv);
	for (long i = 1; i <= n; i++) {
		Drover__BodyType type = 0;
		Drover__RejectReason reason = 0;
		char id[80];

		snprintf(id, sizeof(id), i == 1 ? "%s" : "%s-%ld", a.id, i);
		/* a Reject of the first Hello (a follower's NOT_LEADER) ends
		 * the session with an error, yet it is the answer */
		rv = session(&a, &a.stranger, id, label, NULL, &type, &reason, NULL);
		printf("claim %s %s %d\n", id,
		       type == DROVER__BODY_TYPE__BODY_REJECT    ? "reject"
		       : rv != 0                                 ? "error"
		       : type == DROVER__BODY_TYPE__BODY_WELCOME ? "welcome"
		                                                 : "reject",
		       (int)reason);
	}
	fflush(stdout);
	close_sock(a.sock);
	drv_keypair_wipe(&a.stranger);
	return 0;
}

/* ---- fake coordinator: bad instructions against a real agent ---- */

struct fake {
	nng_socket sock;
	const char *id, *out;
	struct drv_keypair coord, stranger;
	int step;
	nng_msg *first; /* the first valid instruction, kept for its replay */
	bool done;      /* the last instruction's result arrived */
	/* replies relayed from someone else's exchange */
	int hellos;
	uint64_t foreign_ack_seq; /* report acked for another agent */
	bool foreign_reject_sent, after_foreign_reject;
	uint8_t req[32]; /* hash of the request being answered */
};

static nng_msg *instruction(struct fake *f, const struct drv_keypair *kp, const char *target,
                            uint64_t seq, const char *step, int64_t issued, bool no_digest)
{
	Drover__Instruction ins = DROVER__INSTRUCTION__INIT;
	Drover__Hook hook = DROVER__HOOK__INIT;
	Drover__ServiceSpec svc = DROVER__SERVICE_SPEC__INIT;
	Drover__ImageRef img = DROVER__IMAGE_REF__INIT;
	char cmd[1024];
	char *run[] = {"/bin/sh", "-c", cmd};
	nng_msg *m = NULL;

	snprintf(cmd, sizeof(cmd), "echo %s >> '%s'", step, f->out);
	hook.name = (char *)step;
	hook.run = run;
	hook.n_run = 3;
	hook.timeout_ms = 10000;
	ins.target_agent = (char *)target;
	ins.step_id = (char *)step;
	ins.seq = seq;
	ins.issued_at_ms = issued;
	ins.expires_at_ms = issued + 60000;
	ins.action = DROVER__ACTION__ACTION_RUN_HOOK;
	ins.hook = &hook;
	if (no_digest) {
		img.reference = "registry.example/berry:1";
		svc.name = "berry";
		svc.image = &img;
		ins.service = &svc;
		ins.action = DROVER__ACTION__ACTION_START;
		ins.hook = NULL;
	}
	seal(kp, DRV_COORDINATOR_SENDER, DROVER__BODY_TYPE__BODY_INSTRUCTION, &ins.base, false, &m);
	return m;
}

/* The poll answer for script step n; NULL when the script is over. */
static nng_msg *script(struct fake *f, int n)
{
	int64_t now = drv_wall_ms();
	nng_msg *m;

	switch (n) {
	case 0:
		f->first = instruction(f, &f->coord, f->id, 1, "ok-1", now, false);
		return f->first && nng_msg_dup(&m, f->first) == 0 ? m : NULL;
	case 1: return nng_msg_dup(&m, f->first) == 0 ? m : NULL; /* the replay */
	case 2: return instruction(f, &f->stranger, f->id, 2, "forged-key", now, false);
	case 3:
		return corrupt_signature(
		        instruction(f, &f->coord, f->id, 2, "forged-sig", now, false));
	case 4: return instruction(f, &f->coord, "someone-else", 2, "other-agent", now, false);
	case 5: return instruction(f, &f->coord, f->id, 2, "expired", now - 3600 * 1000, false);
	case 6: return garbage(BIG);
	case 7: return garbage(300);
	case 8: return instruction(f, &f->coord, f->id, 3, "no-digest", now, true);
	case 9: return instruction(f, &f->coord, f->id, 4, "ok-2", now, false);
	default: return NULL;
	}
}

static nng_msg *simple_reply(struct fake *f, Drover__BodyType type, const ProtobufCMessage *body)
{
	nng_msg *m = NULL;

	seal(&f->coord, DRV_COORDINATOR_SENDER, type, body, false, &m);
	return m;
}

static nng_msg *answer_report(struct fake *f, const Drover__Envelope *env)
{
	Drover__Report *r = drover__report__unpack(NULL, env->body.len, env->body.data);
	Drover__Ack ack = DROVER__ACK__INIT;
	nng_msg *m;

	if (r == NULL)
		return NULL;
	ack.agent_id = (char *)f->id;
	ack.request_hash.data = f->req;
	ack.request_hash.len = sizeof(f->req);
	if (f->foreign_ack_seq == 0) {
		/* the right seq, but the Ack of another agent's report */
		f->foreign_ack_seq = r->report_seq;
		ack.agent_id = "someone-else";
		printf("foreign ack sent for report_seq=%llu\n", (unsigned long long)r->report_seq);
	} else if (r->report_seq == f->foreign_ack_seq) {
		printf("ok report resent after a foreign ack (report_seq=%llu)\n",
		       (unsigned long long)r->report_seq);
	}
	printf("report step=%s result=%d seq=%llu message=\"%s\"\n", r->step_id ? r->step_id : "",
	       (int)r->result, (unsigned long long)r->instruction_seq,
	       r->message ? r->message : "");
	fflush(stdout);
	if (r->step_id != NULL && strcmp(r->step_id, "ok-2") == 0 &&
	    r->result == DROVER__STEP_RESULT__STEP_SUCCEEDED)
		f->done = true;
	ack.seq = r->report_seq;
	m = simple_reply(f, DROVER__BODY_TYPE__BODY_ACK, &ack.base);
	drover__report__free_unpacked(r, NULL);
	return m;
}

static nng_msg *answer(struct fake *f, nng_msg *req)
{
	Drover__Envelope *env = drover__envelope__unpack(NULL, nng_msg_len(req), nng_msg_body(req));
	Drover__Welcome w = DROVER__WELCOME__INIT;
	Drover__Idle idle = DROVER__IDLE__INIT;
	Drover__Reject rj = DROVER__REJECT__INIT;
	uint8_t other[32] = {1};
	nng_msg *m = NULL;

	if (env == NULL)
		return NULL;
	crypto_generichash(f->req, sizeof(f->req), nng_msg_body(req), nng_msg_len(req), NULL, 0);
	w.agent_id = idle.agent_id = rj.agent_id = (char *)f->id;
	w.request_hash.data = idle.request_hash.data = rj.request_hash.data = f->req;
	w.request_hash.len = idle.request_hash.len = rj.request_hash.len = sizeof(f->req);
	if (f->after_foreign_reject) {
		f->after_foreign_reject = false;
		printf("%s session kept after a foreign reject (next request type %d)\n",
		       env->type == DROVER__BODY_TYPE__BODY_POLL ? "ok" : "FAIL", (int)env->type);
	}
	switch (env->type) {
	case DROVER__BODY_TYPE__BODY_HELLO:
		w.status = DROVER__AGENT_STATUS__AGENT_ACCEPTED;
		w.server_time_ms = drv_wall_ms();
		w.poll_timeout_ms = 2000;
		w.heartbeat_ms = 2000;
		if (f->hellos++ == 0) {
			w.agent_id = "someone-else"; /* a Welcome relayed from another agent */
			printf("foreign welcome sent\n");
		} else if (f->hellos == 2) {
			printf("ok hello said again after a foreign welcome\n");
		}
		m = simple_reply(f, DROVER__BODY_TYPE__BODY_WELCOME, &w.base);
		break;
	case DROVER__BODY_TYPE__BODY_POLL:
		if (!f->foreign_reject_sent) {
			/* NOT_ACCEPTED, but naming another request: must not end the session */
			f->foreign_reject_sent = f->after_foreign_reject = true;
			rj.reason = DROVER__REJECT_REASON__REJECT_NOT_ACCEPTED;
			rj.request_hash.data = other;
			printf("foreign reject sent\n");
			m = simple_reply(f, DROVER__BODY_TYPE__BODY_REJECT, &rj.base);
			break;
		}
		m = script(f, f->step);
		if (m != NULL) {
			printf("poll answered with script step %d\n", f->step);
			fflush(stdout);
			f->step++;
		} else {
			nng_msleep(200); /* idle: do not let the agent spin */
			m = simple_reply(f, DROVER__BODY_TYPE__BODY_IDLE, &idle.base);
		}
		break;
	case DROVER__BODY_TYPE__BODY_REPORT: m = answer_report(f, env); break;
	default: break;
	}
	drover__envelope__free_unpacked(env, NULL);
	return m;
}

static int serve_fake(struct fake *f, int64_t timeout_ms)
{
	int64_t end = drv_mono_ms() + timeout_ms;

	while (drv_mono_ms() < end && !f->done) {
		nng_msg *req, *rep;
		int rv = nng_recvmsg(f->sock, &req, 0);

		if (rv == NNG_ETIMEDOUT)
			continue;
		if (rv != 0)
			return fail("recv", rv);
		rep = answer(f, req);
		nng_msg_free(req);
		if (rep != NULL && (rv = nng_sendmsg(f->sock, rep, 0)) != 0) {
			nng_msg_free(rep);
			return fail("send", rv);
		}
	}
	return f->done ? 0 : 1;
}

static int cmd_fake(int argc, char **argv)
{
	static const struct option longopts[] = {{"listen", required_argument, NULL, 'l'},
	                                         {"coord-key", required_argument, NULL, 'k'},
	                                         {"agent-id", required_argument, NULL, 'i'},
	                                         {"out", required_argument, NULL, 'o'},
	                                         {"timeout", required_argument, NULL, 't'},
	                                         {NULL, 0, NULL, 0}};
	const char *url = NULL, *key = NULL;
	struct fake f = {0};
	long timeout_s = 60;
	int c, rv;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': url = optarg; break;
		case 'k': key = optarg; break;
		case 'i': f.id = optarg; break;
		case 'o': f.out = optarg; break;
		case 't': timeout_s = atol(optarg); break;
		default: return 2;
		}
	}
	if (url == NULL || key == NULL || f.id == NULL || f.out == NULL)
		return 2;
	if (drv_keypair_load(key, &f.coord) != DRV_OK ||
	    drv_keypair_generate(&f.stranger) != DRV_OK) {
		fprintf(stderr, "linkprobe: cannot load %s\n", key);
		return 1;
	}
	if ((rv = nng_rep0_open(&f.sock)) != 0 ||
	    (rv = nng_socket_set_ms(f.sock, NNG_OPT_RECVTIMEO, 500)) != 0 ||
	    (rv = nng_listen(f.sock, url, NULL, 0)) != 0)
		return fail("listen", rv);
	printf("listening on %s\n", url);
	fflush(stdout);
	rv = serve_fake(&f, timeout_s * 1000);
	printf("%s: script steps served %d, last result %s\n", rv ? "FAIL" : "ok", f.step,
	       f.done ? "arrived" : "missing");
	fflush(stdout);
	close_sock(f.sock);
	nng_msg_free(f.first);
	drv_keypair_wipe(&f.coord);
	drv_keypair_wipe(&f.stranger);
	return rv;
}

int main(int argc, char **argv)
{
	int rc;

	if (drv_crypto_init() != DRV_OK)
		return 1;
	if (argc >= 2 && strcmp(argv[1], "attack") == 0)
		rc = cmd_attack(argc - 1, argv + 1);
	else if (argc >= 2 && strcmp(argv[1], "fake-coordinator") == 0)
		rc = cmd_fake(argc - 1, argv + 1);
	else if (argc >= 2 && strcmp(argv[1], "claim") == 0)
		rc = cmd_claim(argc - 1, argv + 1);
	else
		rc = 2;
	if (rc == 2)
		fprintf(stderr, "usage: linkprobe attack --url URL --agent-id ID --agent-key FILE "
		                "[--flood N]\n"
		                "       linkprobe claim --url URL --agent-id ID [--count N] "
		                "[--label TIER]\n"
		                "       linkprobe fake-coordinator --listen URL --coord-key FILE "
		                "--agent-id ID --out FILE [--timeout S]\n");
	if (!close_abandoned) /* else NNG still holds the socket: exit frees it */
		nng_fini();
	return rc;
}
