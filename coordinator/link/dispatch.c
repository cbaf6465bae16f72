/* dispatch.c: build, sign and queue instructions. */
#include "dispatch.h"

#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "ha.h"
#include "err.h"
#include "log.h"

bool dispatch_digest_valid(const char *digest)
{
	if (digest == NULL || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 7 + 64)
		return false;
	return strspn(digest + 7, "0123456789abcdef") == 64;
}

static bool needs_image(Drover__Action a)
{
	return a == DROVER__ACTION__ACTION_PRESTAGE || a == DROVER__ACTION__ACTION_START;
}

static int validate(const struct dispatch_instr *in)
{
	if (in->agent_id == NULL || !drv_agent_id_valid(in->agent_id) || in->step_id == NULL ||
	    in->step_id[0] == '\0' || strlen(in->step_id) > DISPATCH_STEP_ID_MAX)
		return DRV_EINVAL;
	if (in->action <= DROVER__ACTION__ACTION_UNSPECIFIED ||
	    in->action > DROVER__ACTION__ACTION_READ_LOG)
		return DRV_EINVAL;
	if (in->action == DROVER__ACTION__ACTION_READ_LOG &&
	    (in->log == NULL || in->log->service == NULL || in->log->service[0] == '\0'))
		return DRV_EINVAL;
	if (in->ttl_ms < 0 || in->ttl_ms > DISPATCH_TTL_MAX_MS)
		return DRV_EINVAL;
	if (in->action == DROVER__ACTION__ACTION_RUN_HOOK &&
	    (in->hook == NULL || in->hook->n_run == 0))
		return DRV_EINVAL;
	if (needs_image(in->action) && (in->service == NULL || in->service->image == NULL ||
	                                !dispatch_digest_valid(in->service->image->digest)))
		return DRV_ENODIGEST;
	return DRV_OK;
}

struct seal_ctx {
	const struct drv_keypair *kp;
	Drover__Instruction ins;
	struct dispatch_sealed *pre; /* signed ahead, or NULL */
};

static void build(const struct dispatch_instr *in, int64_t now_ms, int64_t ttl,
                  Drover__Instruction *ins)
{
	ins->target_agent = (char *)in->agent_id;
	ins->deployment_id = (char *)(in->deployment_id ? in->deployment_id : "");
	ins->step_id = (char *)in->step_id;
	ins->issued_at_ms = now_ms;
	ins->expires_at_ms = now_ms + ttl;
	ins->action = in->action;
	ins->service = (Drover__ServiceSpec *)in->service;
	ins->hook = (Drover__Hook *)in->hook;
	ins->log = (Drover__LogRequest *)in->log;
	ins->step_deadline_ms = in->step_deadline_ms;
}

static int64_t ttl_of(const struct dispatch_instr *in, int64_t default_ttl_ms)
{
	return in->ttl_ms > 0 ? in->ttl_ms : default_ttl_ms;
}

static int seal(void *arg, uint64_t seq, uint8_t **env, size_t *len)
{
	struct seal_ctx *sc = arg;

	if (sc->pre != NULL && sc->pre->env != NULL && sc->pre->seq == seq) {
		*env = sc->pre->env; /* signed ahead for this very number */
		*len = sc->pre->len;
		sc->pre->env = NULL;
		return DRV_OK;
	}
	sc->ins.seq = seq;
	return drv_env_seal_epoch(sc->kp, DRV_COORDINATOR_SENDER,
	                          DROVER__BODY_TYPE__BODY_INSTRUCTION, &sc->ins.base,
	                          drv_ha_wire_epoch(), false, env, len);
}

int dispatch_presign(const struct drv_keypair *kp, const struct dispatch_instr *in, int64_t now_ms,
                     int64_t default_ttl_ms, uint64_t seq, struct dispatch_sealed *out)
{
	struct seal_ctx sc = {.kp = kp, .ins = DROVER__INSTRUCTION__INIT};
	int64_t ttl = ttl_of(in, default_ttl_ms);
	int rc = validate(in);

	memset(out, 0, sizeof(*out));
	if (rc != DRV_OK)
		return rc;
	build(in, now_ms, ttl, &sc.ins);
	rc = seal(&sc, seq, &out->env, &out->len);
	if (rc != DRV_OK)
		return rc;
	out->seq = seq;
	out->now_ms = now_ms;
	out->ttl_ms = ttl;
	return DRV_OK;
}

void dispatch_sealed_clear(struct dispatch_sealed *p)
{
	if (p == NULL)
		return;
	free(p->env);
	memset(p, 0, sizeof(*p));
}

/* The store's view of in, sealing through sc (validated first). */
static int prepare(const struct drv_keypair *kp, const struct dispatch_instr *in,
                   struct dispatch_sealed *pre, int64_t now_ms, int64_t default_ttl_ms,
                   struct seal_ctx *sc, struct store_enqueue *q)
{
	int64_t ttl = ttl_of(in, default_ttl_ms);
	int rc;

	*sc = (struct seal_ctx){.kp = kp, .ins = DROVER__INSTRUCTION__INIT};
	memset(q, 0, sizeof(*q));
	if (pre != NULL && pre->env != NULL) { /* the times it was signed with */
		now_ms = pre->now_ms;
		ttl = pre->ttl_ms;
		sc->pre = pre;
	}
	rc = validate(in);
	if (rc != DRV_OK)
		return rc;
	build(in, now_ms, ttl, &sc->ins);
	q->agent_id = in->agent_id;
	q->step_id = in->step_id;
	q->deployment_id = sc->ins.deployment_id;
	q->action = in->action;
	q->issued_at_ms = now_ms;
	q->expires_at_ms = now_ms + ttl;
	q->seal = seal;
	q->seal_arg = sc;
	q->accepted_only = true; /* its status checked in the same read as its next seq */
	return DRV_OK;
}

static void queued_log(const struct dispatch_instr *in, uint64_t seq)
{
	drv_info("dispatch", "instruction queued", "agent=%s seq=%llu step=%s action=%d",
	         in->agent_id, (unsigned long long)seq, in->step_id, (int)in->action);
}

int dispatch_enqueue_sealed(struct store *s, const struct drv_keypair *kp,
                            const struct dispatch_instr *in, struct dispatch_sealed *pre,
                            int64_t now_ms, int64_t default_ttl_ms, uint64_t *seq_out)
{
	struct seal_ctx sc;
	struct store_enqueue q;
	uint64_t seq;
	int rc = prepare(kp, in, pre, now_ms, default_ttl_ms, &sc, &q);

	if (rc != DRV_OK)
		return rc;
	rc = store_instr_enqueue(s, &q, &seq);
	if (rc == DRV_OK || rc == DRV_EEXIST)
		*seq_out = seq;
	if (rc == DRV_OK)
		queued_log(in, seq);
	return rc;
}

int dispatch_enqueue_many(struct store *s, const struct drv_keypair *kp,
                          const struct dispatch_instr *in, struct dispatch_sealed *pre, size_t n,
                          int64_t now_ms, int64_t default_ttl_ms, uint64_t *seqs, int *rcs)
{
	struct seal_ctx *sc = calloc(n ? n : 1, sizeof(*sc));
	struct store_enqueue *q = calloc(n ? n : 1, sizeof(*q));
	size_t *at = calloc(n ? n : 1, sizeof(*at));
	uint64_t *qseq = calloc(n ? n : 1, sizeof(*qseq));
	int *qrc = calloc(n ? n : 1, sizeof(*qrc));
	size_t k = 0;
	int rc = sc && q && at && qseq && qrc ? DRV_OK : DRV_ENOMEM;

	for (size_t i = 0; rc == DRV_OK && i < n; i++) {
		seqs[i] = 0;
		rcs[i] = prepare(kp, &in[i], pre != NULL ? &pre[i] : NULL, now_ms, default_ttl_ms,
		                 &sc[k], &q[k]);
		if (rcs[i] == DRV_OK)
			at[k++] = i;
	}
	if (rc == DRV_OK && k > 0)
		store_instr_enqueue_many(s, q, k, qseq, qrc);
	for (size_t j = 0; rc == DRV_OK && j < k; j++) {
		size_t i = at[j];

		rcs[i] = qrc[j];
		if (qrc[j] == DRV_OK || qrc[j] == DRV_EEXIST)
			seqs[i] = qseq[j];
		if (qrc[j] == DRV_OK)
			queued_log(&in[i], qseq[j]);
	}
	free(sc);
	free(q);
	free(at);
	free(qseq);
	free(qrc);
	return rc;
}

int dispatch_enqueue(struct store *s, const struct drv_keypair *kp, const struct dispatch_instr *in,
                     int64_t now_ms, int64_t default_ttl_ms, uint64_t *seq_out)
{
	return dispatch_enqueue_sealed(s, kp, in, NULL, now_ms, default_ttl_ms, seq_out);
}
