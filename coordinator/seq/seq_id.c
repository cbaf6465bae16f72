/*
 * seq_id.c: step and operation ids, deterministic so that a replayed
 * transition issues the same id: the one table of step-kind names, the
 * builder (seq_step_id) and the one parser (drv_seq_id_parse).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "seq_int.h"

static const char *const step_kind_names[DRV_SEQ_STEP_KINDS] = {
        [DRV_SEQ_STEP_PRESTAGE] = "prestage", [DRV_SEQ_STEP_START] = "start",
        [DRV_SEQ_STEP_ROLLBACK] = "rollback", [DRV_SEQ_STEP_FINALIZE] = "finalize",
        [DRV_SEQ_STEP_PRE] = "pre",           [DRV_SEQ_STEP_UP] = "up",
        [DRV_SEQ_STEP_DOWN] = "down",         [DRV_SEQ_STEP_POST] = "post",
        [DRV_SEQ_STEP_TRAFFIC] = "traffic",
};

const char *drv_seq_step_kind_name(int kind)
{
	return kind >= 0 && kind < DRV_SEQ_STEP_KINDS ? step_kind_names[kind] : "other";
}

/*
 * kind:a:b, with a generation in front for rollback and down
 * (rollback:GEN:SVC:HOST) and the operation in the middle for traffic
 * hooks (traffic:SVC:OP:HOST).
 */
void seq_step_id(const struct drv_seq *s, char *buf, enum drv_seq_step_kind kind, uint32_t a,
                 uint32_t b, uint32_t c)
{
	const char *k = step_kind_names[kind];

	if (kind == DRV_SEQ_STEP_ROLLBACK || kind == DRV_SEQ_STEP_DOWN)
		snprintf(buf, DRV_SEQ_STEP_ID_MAX, "%s:%s:%u:%u:%u", s->id, k, s->rb_gen, a, b);
	else if (kind == DRV_SEQ_STEP_TRAFFIC)
		snprintf(buf, DRV_SEQ_STEP_ID_MAX, "%s:%s:%u:%u:%u", s->id, k, a, c, b);
	else
		snprintf(buf, DRV_SEQ_STEP_ID_MAX, "%s:%s:%u:%u", s->id, k, a, b);
}

static int kind_of(const char *p, size_t klen)
{
	for (int k = 0; k < DRV_SEQ_STEP_KINDS; k++) {
		if (strlen(step_kind_names[k]) == klen && strncmp(p, step_kind_names[k], klen) == 0)
			return k;
	}
	if (klen == 6 && strncmp(p, "metric", 6) == 0)
		return DRV_SEQ_ID_METRIC;
	return -1;
}

int drv_seq_id_parse(const char *id, struct drv_seq_id *out)
{
	const char *p = id ? strchr(id, ':') : NULL;
	size_t klen;
	char *end;

	if (p == NULL || p == id || (size_t)(p - id) > DRV_SEQ_ID_MAX)
		return DRV_EINVAL;
	out->dep_len = (size_t)(p - id);
	p++;
	klen = strcspn(p, ":");
	out->kind = kind_of(p, klen);
	if (out->kind < 0)
		return DRV_EINVAL;
	p += klen;
	for (out->count = 0; *p == ':' && out->count < 3; out->count++) {
		if (!isdigit((unsigned char)p[1]))
			return DRV_EINVAL;
		out->n[out->count] = (uint32_t)strtoul(p + 1, &end, 10);
		p = end;
	}
	if (*p != '\0')
		return DRV_EINVAL;
	if (out->kind == DRV_SEQ_STEP_TRAFFIC && out->count == 2)
		out->kind = DRV_SEQ_ID_TRAFFIC;
	return DRV_OK;
}

int seq_parse_id(const struct drv_seq *s, const char *id, struct drv_seq_id *out)
{
	if (drv_seq_id_parse(id, out) != DRV_OK || out->dep_len != strlen(s->id) ||
	    strncmp(id, s->id, out->dep_len) != 0)
		return DRV_EINVAL;
	return DRV_OK;
}
