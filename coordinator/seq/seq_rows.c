/*
 * seq_rows.c: the sequencer's state for a store that keeps rows, so that a
 * save writes what changed and not every host.
 *
 * The state splits in two: the rest (seq_save_json without hosts: scalars,
 * services, hooks; O(services + hook hosts)) and rows, "agents" (every
 * agent's name, in index order) and "h<service>.<index>" (one host's
 * compact array, as in the whole state). Each service keeps a copy of its
 * hosts as the last stored rows hold them; a save returns the rows that
 * differ from it, and drv_seq_rows_stored() (after the store's commit)
 * takes the copy again. Comparing costs O(hosts) in memory, writing
 * O(changed hosts). Loading puts the rows back into a whole state and loads
 * that (drv_seq_load), so both ways are checked alike.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "seq_int.h"

#define ROW_KEY_MAX 40 /* "h" SIZE_MAX "." UINT32_MAX */

static void host_key(char key[ROW_KEY_MAX], size_t svc, uint32_t hi)
{
	snprintf(key, ROW_KEY_MAX, "h%zu.%u", svc, hi);
}

static bool same_host(const struct seq_host *a, const struct seq_host *b)
{
	return a->agent == b->agent && a->flags == b->flags && memcmp(a->st, b->st, K_COUNT) == 0;
}

static int agents_row(const struct drv_seq *s, json_t *rows)
{
	json_t *arr = json_array();

	for (uint32_t i = 0; arr != NULL && i < s->n_agents; i++) {
		if (json_array_append_new(arr, json_string(s->agents[i])) != 0) {
			json_decref(arr);
			return DRV_ENOMEM;
		}
	}
	return arr != NULL && json_object_set_new(rows, "agents", arr) == 0 ? DRV_OK : DRV_ENOMEM;
}

static int svc_rows(const struct seq_svc *v, size_t svc, json_t *rows)
{
	char key[ROW_KEY_MAX];

	for (uint32_t hi = 0; hi < v->n; hi++) {
		if (hi < v->n_stored && same_host(&v->hosts[hi], &v->stored[hi]))
			continue;
		host_key(key, svc, hi);
		if (json_object_set_new(rows, key, seq_host_json(&v->hosts[hi])) != 0)
			return DRV_ENOMEM;
	}
	return DRV_OK;
}

int drv_seq_save_rows(const struct drv_seq *s, json_t **state, json_t *rows)
{
	json_t *st;
	int rc = seq_save_json(s, false, &st);

	if (rc == DRV_OK && s->n_agents != s->agents_stored)
		rc = agents_row(s, rows);
	for (size_t i = 0; rc == DRV_OK && i < s->plan->n_services; i++)
		rc = svc_rows(&s->svcs[i], i, rows);
	if (rc != DRV_OK) {
		json_decref(st);
		return rc;
	}
	*state = st;
	return DRV_OK;
}

void drv_seq_rows_stored(struct drv_seq *s)
{
	s->agents_stored = s->n_agents;
	for (size_t i = 0; i < s->plan->n_services; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (v->n > v->cap_stored) {
			struct seq_host *p = realloc(v->stored, v->n * sizeof(*p));

			if (p == NULL)
				continue; /* the old copy only makes the next save write more */
			v->stored = p;
			v->cap_stored = v->n;
		}
		if (v->n > 0)
			memcpy(v->stored, v->hosts, v->n * sizeof(*v->hosts));
		v->n_stored = v->n;
	}
}

/* ---- load ---- */

static int svc_merge(json_t *sv, size_t svc, const json_t *rows)
{
	const json_t *n = json_object_get(sv, "n_hosts");
	json_t *hosts = json_array();
	char key[ROW_KEY_MAX];
	int rc = hosts != NULL ? DRV_OK : DRV_ENOMEM;

	if (!json_is_integer(n) || json_integer_value(n) < 0 ||
	    json_integer_value(n) > DRV_PLAN_MAX_HOSTS)
		rc = DRV_EINVAL;
	for (uint32_t hi = 0; rc == DRV_OK && hi < (uint32_t)json_integer_value(n); hi++) {
		json_t *h;

		host_key(key, svc, hi);
		h = json_object_get(rows, key);
		if (h == NULL)
			rc = DRV_EINVAL; /* a host without its row */
		else if (json_array_append(hosts, h) != 0)
			rc = DRV_ENOMEM;
	}
	if (rc == DRV_OK &&
	    (json_object_del(sv, "n_hosts") != 0 || json_object_set_new(sv, "hosts", hosts) != 0))
		return DRV_ENOMEM;
	if (rc != DRV_OK)
		json_decref(hosts);
	return rc;
}

/* The whole state (as drv_seq_save writes it) from the rest and the rows. */
static int merge(const json_t *state, const json_t *rows, json_t **out)
{
	json_t *full = json_deep_copy(state), *agents = json_object_get(rows, "agents"), *sv;
	const json_t *n = json_object_get(state, "n_agents");
	size_t i;
	int rc = full != NULL ? DRV_OK : DRV_ENOMEM;

	if (!json_is_array(agents) || !json_is_integer(n) ||
	    (json_int_t)json_array_size(agents) != json_integer_value(n))
		rc = DRV_EINVAL;
	if (rc == DRV_OK && (json_object_del(full, "n_agents") != 0 ||
	                     json_object_set(full, "agents", agents) != 0))
		rc = DRV_ENOMEM;
	json_array_foreach(json_object_get(full, "services"), i, sv)
	{
		if (rc == DRV_OK)
			rc = json_is_object(sv) ? svc_merge(sv, i, rows) : DRV_EINVAL;
	}
	if (rc != DRV_OK) {
		json_decref(full);
		return rc;
	}
	*out = full;
	return DRV_OK;
}

int drv_seq_load_rows(const struct drv_plan *plan, const json_t *state, const json_t *rows,
                      struct drv_seq **out)
{
	json_t *full;
	int rc;

	/* a whole state (saved before the rows): its first save writes every row */
	if (json_object_get(state, "agents") != NULL)
		return drv_seq_load(plan, state, out);
	if (!json_is_object(state))
		return DRV_EINVAL;
	rc = merge(state, rows, &full);
	if (rc != DRV_OK)
		return rc;
	rc = drv_seq_load(plan, full, out);
	json_decref(full);
	if (rc == DRV_OK)
		drv_seq_rows_stored(*out);
	return rc;
}
