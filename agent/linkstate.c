/* linkstate.c: the agent link's persistent state as JSON (jansson). */
#include "linkstate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "err.h"

static int get_u64(json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return DRV_EDECODE;
	*out = (uint64_t)json_integer_value(v);
	return DRV_OK;
}

static int get_str(json_t *o, const char *key, char *out, size_t cap)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL) {
		out[0] = '\0';
		return DRV_OK;
	}
	if (!json_is_string(v) || json_string_length(v) >= cap)
		return DRV_EDECODE;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return DRV_OK;
}

static int parse_step(json_t *j, struct linkstate_step *s)
{
	uint64_t result = 0, code = 0;
	json_t *ec = json_object_get(j, "exit_code");

	if (!json_is_object(j) || get_u64(j, "seq", &s->seq) != DRV_OK ||
	    get_str(j, "step_id", s->step_id, sizeof(s->step_id)) != DRV_OK ||
	    s->step_id[0] == '\0' ||
	    get_str(j, "deployment_id", s->deployment_id, sizeof(s->deployment_id)) != DRV_OK ||
	    get_str(j, "message", s->message, sizeof(s->message)) != DRV_OK ||
	    get_u64(j, "result", &result) != DRV_OK || result > DROVER__STEP_RESULT__STEP_STATUS)
		return DRV_EDECODE;
	if (ec != NULL && !json_is_integer(ec))
		return DRV_EDECODE;
	code = ec ? (uint64_t)json_integer_value(ec) : 0;
	s->result = (Drover__StepResult)result;
	s->exit_code = (int32_t)code;
	return DRV_OK;
}

static int parse_root(json_t *root, struct linkstate *st)
{
	json_t *steps = json_object_get(root, "steps");
	size_t i;
	json_t *v;

	if (!json_is_object(root) || get_u64(root, "applied_seq", &st->applied_seq) != DRV_OK ||
	    get_u64(root, "report_seq_reserved", &st->report_seq_reserved) != DRV_OK)
		return DRV_EDECODE;
	if (steps == NULL)
		return DRV_OK;
	if (!json_is_array(steps) || json_array_size(steps) > LINKSTATE_STEPS_MAX)
		return DRV_EDECODE;
	json_array_foreach(steps, i, v)
	{
		if (parse_step(v, &st->steps[i]) != DRV_OK)
			return DRV_EDECODE;
		st->n_steps = i + 1;
	}
	return DRV_OK;
}

int linkstate_parse(const char *buf, size_t len, struct linkstate *out)
{
	struct linkstate *st;
	json_t *root;
	int rc;

	if (len > LINKSTATE_FILE_MAX)
		return DRV_ETOOBIG;
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	if (root == NULL)
		return DRV_EDECODE;
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		json_decref(root);
		return DRV_ENOMEM;
	}
	rc = parse_root(root, st);
	json_decref(root);
	if (rc == DRV_OK)
		memcpy(out, st, sizeof(*st));
	free(st);
	return rc;
}

int linkstate_load(const char *path, struct linkstate *out)
{
	char *buf;
	size_t len;
	int rc = drv_read_file(path, LINKSTATE_FILE_MAX, &buf, &len);

	if (rc == DRV_ENOENT) {
		memset(out, 0, sizeof(*out));
		return DRV_OK;
	}
	if (rc != DRV_OK)
		return rc;
	rc = linkstate_parse(buf, len, out);
	free(buf);
	return rc;
}

static json_t *step_json(const struct linkstate_step *s)
{
	return json_pack("{s:I, s:s, s:s, s:i, s:i, s:s}", "seq", (json_int_t)s->seq, "step_id",
	                 s->step_id, "deployment_id", s->deployment_id, "result", (int)s->result,
	                 "exit_code", (int)s->exit_code, "message", s->message);
}

int linkstate_save(const char *path, const struct linkstate *st)
{
	json_t *root, *steps = json_array();
	char *text;
	int rc;

	for (size_t i = 0; steps != NULL && i < st->n_steps; i++) {
		if (json_array_append_new(steps, step_json(&st->steps[i])) != 0) {
			json_decref(steps);
			steps = NULL;
		}
	}
	root = steps ? json_pack("{s:I, s:I, s:o}", "applied_seq", (json_int_t)st->applied_seq,
	                         "report_seq_reserved", (json_int_t)st->report_seq_reserved,
	                         "steps", steps)
	             : NULL;
	text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (text == NULL)
		return DRV_ENOMEM;
	rc = drv_write_atomic(path, text, strlen(text), 0600);
	free(text);
	return rc;
}

struct linkstate_step *linkstate_find(struct linkstate *st, const char *step_id)
{
	for (size_t i = st->n_steps; i > 0; i--) {
		if (strcmp(st->steps[i - 1].step_id, step_id) == 0)
			return &st->steps[i - 1];
	}
	return NULL;
}

/* Copy a string that may be cut; cut on a UTF-8 boundary so JSON stays valid. */
static void copy_cut(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= cap) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

struct linkstate_step *linkstate_add(struct linkstate *st, uint64_t seq, const char *step_id,
                                     const char *deployment_id)
{
	struct linkstate_step *s;

	if (st->n_steps == LINKSTATE_STEPS_MAX) {
		memmove(&st->steps[0], &st->steps[1],
		        (LINKSTATE_STEPS_MAX - 1) * sizeof(st->steps[0]));
		st->n_steps--;
	}
	s = &st->steps[st->n_steps++];
	memset(s, 0, sizeof(*s));
	s->seq = seq;
	copy_cut(s->step_id, sizeof(s->step_id), step_id);
	copy_cut(s->deployment_id, sizeof(s->deployment_id), deployment_id);
	s->result = DROVER__STEP_RESULT__STEP_ACCEPTED;
	return s;
}

void linkstate_set_result(struct linkstate_step *s, Drover__StepResult result, int32_t exit_code,
                          const char *message)
{
	s->result = result;
	s->exit_code = exit_code;
	copy_cut(s->message, sizeof(s->message), message);
}
