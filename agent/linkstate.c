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
	if (json_object_get(root, "epoch") != NULL && get_u64(root, "epoch", &st->epoch) != DRV_OK)
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

int linkstate_epoch_seen(struct linkstate *st, uint64_t epoch)
{
	if (epoch < st->epoch)
		return DRV_ESTALE;
	if (epoch == st->epoch)
		return DRV_OK;
	st->epoch = epoch;
	return DRV_EEXIST;
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

int linkstate_save(const char *path, const struct linkstate *st)
{
	json_t *root = json_pack("{s:I, s:I, s:I}", "applied_seq", (json_int_t)st->applied_seq,
	                         "report_seq_reserved", (json_int_t)st->report_seq_reserved,
	                         "epoch", (json_int_t)st->epoch);
	char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	int rc;

	json_decref(root);
	if (text == NULL)
		return DRV_ENOMEM;
	rc = drv_write_atomic(path, text, strlen(text), 0600);
	free(text);
	return rc;
}
