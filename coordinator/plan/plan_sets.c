/*
 * plan_sets.c: `strategy.sets` of a blue-green service: blue and green as
 * two sets of hosts rather than two ports on the same hosts.
 *
 *   strategy: { type: blue-green, sets: { a: { labels: { color: a } },
 *                                         b: { labels: { color: b } } } }
 *
 * Exactly two sets, each a non-empty host selection (agent ids or a label
 * selector, as a service's `hosts`), and the two must be disjoint: two
 * selectors need a label both name with different values, two id lists
 * no id in common. A selector and an id list cannot be compared here:
 * droverd checks them against the agents when it deploys (deploy_hosts.c).
 * The first set written is the one a first deployment takes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_int.h"

void plan_sets_free(struct drv_plan_strategy *s)
{
	for (size_t i = 0; i < DRV_PLAN_SETS; i++) {
		free(s->sets[i].name);
		plan_hosts_free(&s->sets[i].hosts);
		s->sets[i].name = NULL;
		s->sets[i].line = 0;
	}
	s->n_sets = 0;
}

/* Two selectors are disjoint when a label both name has two values. */
static bool labels_disjoint(const struct drv_plan_hosts *a, const struct drv_plan_hosts *b)
{
	for (size_t i = 0; i < a->n_labels; i++) {
		for (size_t j = 0; j < b->n_labels; j++) {
			if (strcmp(a->labels[i].key, b->labels[j].key) == 0 &&
			    strcmp(a->labels[i].value, b->labels[j].value) != 0)
				return true;
		}
	}
	return false;
}

/* The first id both lists hold, or NULL. */
static const char *common_id(const struct drv_plan_hosts *a, const struct drv_plan_hosts *b)
{
	for (size_t i = 0; i < a->n_ids; i++) {
		for (size_t j = 0; j < b->n_ids; j++) {
			if (strcmp(a->ids[i], b->ids[j]) == 0)
				return a->ids[i];
		}
	}
	return NULL;
}

static void check_disjoint(struct vctx *c, const char *path, const struct drv_plan_set *a,
                           const struct drv_plan_set *b)
{
	char p[DRV_YJ_PATH_MAX];
	const char *id;

	plan_pjoin(p, path, b->name);
	if (a->hosts.n_labels > 0 && b->hosts.n_labels > 0 &&
	    !labels_disjoint(&a->hosts, &b->hosts))
		plan_verr(c, p,
		          "sets %s and %s may select the same hosts: give both a label with "
		          "different values (e.g. color: %s and color: %s)",
		          a->name, b->name, a->name, b->name);
	else if (a->hosts.n_labels == 0 && b->hosts.n_labels == 0 &&
	         (id = common_id(&a->hosts, &b->hosts)) != NULL)
		plan_verr(c, p, "agent \"%s\" is in both sets %s and %s: the sets must be disjoint",
		          id, a->name, b->name);
}

void plan_sets_read(struct vctx *c, const json_t *v, const char *path, struct drv_plan_strategy *s)
{
	json_t *sets = json_object_get(v, "sets"), *item;
	char p[DRV_YJ_PATH_MAX];
	struct drv_plan_set got[DRV_PLAN_SETS];
	const char *key;
	size_t n = 0;
	bool bad = false;

	if (sets == NULL)
		return;
	plan_pjoin(p, path, "sets");
	if (!json_is_object(sets) || json_object_size(sets) != DRV_PLAN_SETS) {
		plan_verr(
		        c, p,
		        "must name exactly two sets of hosts, e.g. { a: { labels: { color: a } }, "
		        "b: { labels: { color: b } } }");
		plan_sets_free(s);
		s->n_sets = DRV_PLAN_SETS; /* given: no "hosts required" on top (invalid anyway) */
		return;
	}
	memset(got, 0, sizeof(got));
	json_object_foreach(sets, key, item)
	{
		char sp[DRV_YJ_PATH_MAX];
		json_t *wrap;

		plan_pjoin(sp, p, key);
		got[n].line = drv_yj_line(c->lines, sp);
		if (!plan_valid_name(key)) {
			plan_verr(c, sp, "a set's name is letters, digits, '.', '_', '-' (1 to %d)",
			          DRV_PLAN_NAME_MAX);
			bad = true;
		}
		/* a set is what a service's hosts is: ids, or {labels: {...}} */
		wrap = json_pack("{sO}", key, item);
		if (wrap == NULL) {
			c->oom = true;
			bad = true;
		} else if (plan_read_hosts(c, wrap, p, key, &got[n].hosts) != 1) {
			bad = true;
		}
		json_decref(wrap);
		got[n].name = plan_strdup(c, key);
		bad |= got[n].name == NULL;
		n++;
	}
	if (!bad)
		check_disjoint(c, p, &got[0], &got[1]);
	plan_sets_free(s);
	memcpy(s->sets, got, sizeof(got));
	s->n_sets = DRV_PLAN_SETS;
	if (bad) {
		plan_sets_free(s);
		s->n_sets = DRV_PLAN_SETS; /* as above: the plan is refused, names unused */
	}
}

/* The checks that need the rest of the service (check_bluegreen). */
void plan_sets_check(struct vctx *c, const char *path, const struct drv_plan_strategy *s)
{
	char p[DRV_YJ_PATH_MAX];

	if (s->n_sets == 0)
		return;
	if (s->traffic.server != NULL && strstr(s->traffic.server, "{slot}") != NULL) {
		plan_pjoin(p, path, "traffic.server");
		plan_verr(c, p,
		          "with sets a host runs one slot: name servers with {host} (and {set}), "
		          "not {slot}");
	}
}
