/* deploy_hosts.c: a plan's host lists and selectors -> accepted agents. */
#include "deploy_hosts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define LABELS_MAX 64

static const char *str_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static bool accepted(const json_t *a)
{
	return strcmp(str_of(a, "status"), "accepted") == 0;
}

/* The agent's labels as plan key/values (pointers into the JSON). */
static size_t labels_of(const json_t *a, struct drv_plan_kv kv[LABELS_MAX])
{
	const char *k;
	json_t *v;
	size_t n = 0;

	json_object_foreach(json_object_get(a, "labels"), k, v)
	{
		if (n == LABELS_MAX || !json_is_string(v))
			continue;
		kv[n].key = (char *)k;
		kv[n].value = (char *)json_string_value(v);
		n++;
	}
	return n;
}

bool deploy_hosts_selects(const struct drv_plan_hosts *h, const json_t *a)
{
	struct drv_plan_kv kv[LABELS_MAX];
	size_t n = labels_of(a, kv);

	return drv_plan_hosts_match(h, str_of(a, "id"), kv, n);
}

static bool matches(const struct drv_plan_hosts *h, const json_t *a)
{
	return accepted(a) && deploy_hosts_selects(h, a);
}

json_t *deploy_hosts_index(const json_t *agents)
{
	json_t *byid = json_object();
	json_t *a;
	size_t i;

	json_array_foreach(agents, i, a)
	{
		const char *id = json_string_value(json_object_get(a, "id"));

		if (byid == NULL)
			return NULL;
		if (id != NULL && json_object_get(byid, id) == NULL &&
		    json_object_set(byid, id, a) != 0) {
			json_decref(byid);
			return NULL;
		}
	}
	return byid;
}

const json_t *deploy_hosts_find(const json_t *byid, const char *id)
{
	return id != NULL ? json_object_get(byid, id) : NULL;
}

/* Every id listed is accepted, or a selector matches someone. byid is
 * deploy_hosts_index(agents). */
static int check_hosts(const struct drv_plan_hosts *h, const json_t *agents, const json_t *byid,
                       const char *field, int line, struct deploy_hosts_err *err)
{
	const json_t *a;
	size_t i;

	for (i = 0; h->n_labels == 0 && i < h->n_ids; i++) {
		a = deploy_hosts_find(byid, h->ids[i]);
		if (a != NULL && accepted(a))
			continue;
		snprintf(err->message, sizeof(err->message), "agent \"%s\" is %s", h->ids[i],
		         a == NULL ? "unknown"
		         : strcmp(str_of(a, "status"), DEPLOY_HOSTS_OUTSIDE) == 0
		                 ? DEPLOY_HOSTS_OUTSIDE
		                 : "not accepted");
		goto fail;
	}
	if (h->n_labels == 0)
		return DRV_OK;
	json_array_foreach(agents, i, a)
	{
		if (matches(h, a))
			return DRV_OK;
	}
	snprintf(err->message, sizeof(err->message), "the selector matches no accepted agent");
fail:
	snprintf(err->field, sizeof(err->field), "%s", field);
	err->line = line;
	return DRV_ENOENT;
}

const json_t *deploy_hosts_release(const json_t *a, const char *service)
{
	const json_t *r, *best = NULL;
	size_t i;

	json_array_foreach(json_object_get(a, "releases"), i, r)
	{
		if (strcmp(str_of(r, "service"), service) != 0 || str_of(r, "digest")[0] == '\0')
			continue;
		if (best == NULL || strcmp(str_of(r, "state"), "running") == 0)
			best = r;
	}
	return best;
}

/* The service's hosts; with set, only those of that set (and of the
 * service's own hosts when it names any). */
static json_t *service_hosts(const struct drv_plan_service *ps, const struct drv_plan_hosts *set,
                             const json_t *agents)
{
	json_t *list = json_array();
	const json_t *a;
	size_t i;
	bool own = ps->hosts.n_ids > 0 || ps->hosts.n_labels > 0;

	json_array_foreach(agents, i, a)
	{
		const json_t *rel;

		if (list == NULL || (own && !matches(&ps->hosts, a)) ||
		    (set != NULL && !matches(set, a)) || (!own && set == NULL))
			continue;
		rel = deploy_hosts_release(a, ps->name);
		json_array_append_new(list,
		                      json_pack("{s:s, s:b, s:s, s:s}", "agent", str_of(a, "id"),
		                                "prev", rel != NULL, "slot", str_of(rel, "slot"),
		                                "from", str_of(rel, "version")));
	}
	return list;
}

static json_t *hook_hosts(const struct drv_plan_hosts *h, const json_t *agents)
{
	json_t *list = json_array();
	const json_t *a;
	size_t i;

	json_array_foreach(agents, i, a)
	{
		if (list != NULL && matches(h, a))
			json_array_append_new(list, json_string(str_of(a, "id")));
	}
	return list;
}

static int hook_lists(const char *name, const struct drv_plan_hook *hooks, size_t n,
                      const json_t *agents, const json_t *byid, json_t *out,
                      struct deploy_hosts_err *err)
{
	json_t *lists = json_array();
	char field[160];
	int rc = lists ? DRV_OK : DRV_ENOMEM;

	for (size_t i = 0; rc == DRV_OK && i < n; i++) {
		snprintf(field, sizeof(field), "%s[%zu].hosts", name, i);
		rc = check_hosts(&hooks[i].hosts, agents, byid, field, 0, err);
		if (rc == DRV_OK &&
		    json_array_append_new(lists, hook_hosts(&hooks[i].hosts, agents)))
			rc = DRV_ENOMEM;
	}
	if (rc == DRV_OK && json_object_set_new(out, name, lists) != 0)
		return DRV_ENOMEM;
	if (rc != DRV_OK)
		json_decref(lists);
	return rc;
}

static void service_field(const struct drv_plan *p, size_t i, const char *rest, char *buf,
                          size_t cap)
{
	size_t t = p->services[i].tier;

	snprintf(buf, cap, "tiers[%zu].services[%zu].%s", t, i - p->tiers[t].first, rest);
}

/* The agents of a host list (targets' "services" entries, or agent ids)
 * as the keys of an object, to look them up once each. */
static int agent_set_add(json_t *set, const json_t *list)
{
	const json_t *h;
	size_t i;

	json_array_foreach(list, i, h)
	{
		const char *id = json_is_string(h) ? json_string_value(h) : str_of(h, "agent");

		if (json_object_set_new(set, id, json_true()) != 0)
			return DRV_ENOMEM;
	}
	return DRV_OK;
}

/* Blue-green across sets: each set's hosts (each must have some, no
 * agent in both); *all gets both lists, one after the other. */
static int set_lists(const struct drv_plan *p, size_t i, const json_t *agents, const json_t *byid,
                     json_t **sets, json_t **all, struct deploy_hosts_err *err)
{
	const struct drv_plan_service *ps = &p->services[i];
	const struct drv_plan_strategy *st = &ps->strategy;
	json_t *lists[DRV_PLAN_SETS] = {NULL, NULL}, *in_a = json_object();
	const json_t *h;
	size_t k;
	int rc = DRV_OK;

	*sets = json_object();
	*all = json_array();
	for (size_t s = 0; s < st->n_sets; s++)
		lists[s] = service_hosts(ps, &st->sets[s].hosts, agents);
	for (size_t s = 0; s < st->n_sets && rc == DRV_OK; s++) {
		char rest[120], field[160];

		snprintf(rest, sizeof(rest), "strategy.sets.%s", st->sets[s].name);
		service_field(p, i, rest, field, sizeof(field));
		snprintf(err->field, sizeof(err->field), "%s", field);
		err->line = st->sets[s].line;
		if (lists[s] == NULL || *sets == NULL || *all == NULL || in_a == NULL ||
		    (s == 0 && agent_set_add(in_a, lists[0]) != DRV_OK))
			rc = DRV_ENOMEM;
		else if ((rc = check_hosts(&st->sets[s].hosts, agents, byid, field,
		                           st->sets[s].line, err)) != DRV_OK)
			break;
		else if (json_array_size(lists[s]) == 0) {
			snprintf(err->message, sizeof(err->message),
			         "set %s matches no accepted agent%s", st->sets[s].name,
			         ps->hosts.n_ids || ps->hosts.n_labels
			                 ? " among the service's hosts"
			                 : "");
			rc = DRV_ENOENT;
		}
		json_array_foreach(s == 1 ? lists[1] : NULL, k, h)
		{
			if (rc == DRV_OK && json_object_get(in_a, str_of(h, "agent")) != NULL) {
				snprintf(err->message, sizeof(err->message),
				         "agent %s is in both sets %s and %s: the sets must be "
				         "disjoint",
				         str_of(h, "agent"), st->sets[0].name, st->sets[1].name);
				rc = DRV_ENOENT;
			}
		}
	}
	for (size_t s = 0; s < st->n_sets && rc == DRV_OK; s++) {
		if (json_object_set(*sets, st->sets[s].name, lists[s]) != 0 ||
		    json_array_extend(*all, lists[s]) != 0)
			rc = DRV_ENOMEM;
	}
	for (size_t s = 0; s < DRV_PLAN_SETS; s++)
		json_decref(lists[s]);
	json_decref(in_a);
	if (rc == DRV_OK)
		memset(err, 0, sizeof(*err));
	return rc;
}

static bool p_has_sets(const struct drv_plan *p)
{
	for (size_t i = 0; i < p->n_services; i++) {
		if (p->services[i].strategy.n_sets > 0)
			return true;
	}
	return false;
}

static int service_lists(const struct drv_plan *p, const json_t *agents, const json_t *byid,
                         json_t *out, struct deploy_hosts_err *err)
{
	json_t *svcs = json_array(), *traffic = json_array(), *sets = json_array();
	char field[160];
	int rc = svcs && traffic && sets ? DRV_OK : DRV_ENOMEM;

	for (size_t i = 0; rc == DRV_OK && i < p->n_services; i++) {
		const struct drv_plan_service *ps = &p->services[i];
		const struct drv_plan_traffic *tr = &ps->strategy.traffic;
		json_t *by_set = NULL, *all = NULL;

		service_field(p, i, "hosts", field, sizeof(field));
		if (ps->hosts.n_ids > 0 || ps->hosts.n_labels > 0)
			rc = check_hosts(&ps->hosts, agents, byid, field, ps->line, err);
		if (rc == DRV_OK && ps->strategy.n_sets > 0)
			rc = set_lists(p, i, agents, byid, &by_set, &all, err);
		if (rc == DRV_OK) {
			if (json_array_append_new(sets, by_set ? by_set : json_null()) != 0)
				rc = DRV_ENOMEM;
			by_set = NULL; /* taken either way */
		}
		json_decref(by_set);
		if (rc == DRV_OK && tr->kind == DRV_TRAFFIC_HOOK) {
			service_field(p, i, "strategy.traffic.hook.hosts", field, sizeof(field));
			rc = check_hosts(&tr->hook.hosts, agents, byid, field, ps->line, err);
		}
		if (rc == DRV_OK &&
		    (json_array_append_new(svcs, all ? json_incref(all)
		                                     : service_hosts(ps, NULL, agents)) != 0 ||
		     json_array_append_new(traffic, tr->kind == DRV_TRAFFIC_HOOK
		                                            ? hook_hosts(&tr->hook.hosts, agents)
		                                            : json_array()) != 0))
			rc = DRV_ENOMEM;
		json_decref(all);
	}
	if (rc == DRV_OK && (json_object_set(out, "services", svcs) != 0 ||
	                     json_object_set(out, "traffic", traffic) != 0 ||
	                     (p_has_sets(p) && json_object_set(out, "sets", sets) != 0)))
		rc = DRV_ENOMEM;
	json_decref(svcs);
	json_decref(traffic);
	json_decref(sets);
	return rc;
}

int deploy_hosts_resolve(const struct drv_plan *p, const json_t *agents, json_t **out,
                         struct deploy_hosts_err *err)
{
	json_t *t = json_object(), *byid = deploy_hosts_index(agents);
	int rc = t && byid ? DRV_OK : DRV_ENOMEM;

	memset(err, 0, sizeof(*err));
	if (rc == DRV_OK)
		rc = hook_lists("pre", p->pre, p->n_pre, agents, byid, t, err);
	if (rc == DRV_OK)
		rc = hook_lists("migrations", p->migrations, p->n_migrations, agents, byid, t, err);
	if (rc == DRV_OK)
		rc = service_lists(p, agents, byid, t, err);
	if (rc == DRV_OK)
		rc = hook_lists("post", p->post, p->n_post, agents, byid, t, err);
	json_decref(byid);
	if (rc != DRV_OK) {
		json_decref(t);
		return rc;
	}
	*out = t;
	return DRV_OK;
}

/* The next number of a dotted version; -1 when there is none. */
static long version_part(const char **s)
{
	char *end;
	long v;

	if (**s < '0' || **s > '9')
		return -1;
	v = strtol(*s, &end, 10);
	*s = *end == '.' ? end + 1 : end;
	return v;
}

bool deploy_hosts_version_older(const char *version, const char *min)
{
	const char *a = version ? version : "", *b = min;

	if (version_part(&(const char *){a}) < 0)
		return true;
	for (int i = 0; i < 3; i++) {
		long x = version_part(&a), y = version_part(&b);

		if (x < 0)
			x = 0;
		if (y < 0)
			y = 0;
		if (x != y)
			return x < y;
	}
	return false;
}

/* The privileges a user asks for are only kept by agents that know them. */
static bool wants_privs(const struct drv_plan_privs *pv, bool root_default)
{
	if (pv->user == NULL)
		return !root_default;
	return strcmp(pv->user, "root") != 0 && strcmp(pv->user, "0") != 0;
}

static int old_agent(const json_t *byid, const char *id, const char *field, int line,
                     const char *what, struct deploy_hosts_err *err)
{
	const char *v = str_of(deploy_hosts_find(byid, id), "agent_version");

	if (!deploy_hosts_version_older(v, DEPLOY_HOSTS_PRIVS_VERSION))
		return DRV_OK;
	snprintf(err->field, sizeof(err->field), "%s", field);
	err->line = line;
	snprintf(err->message, sizeof(err->message),
	         "agent %s runs drover-agent %s, older than %s: it ignores user, group and "
	         "capabilities and would run %s as root; upgrade the agent first (or say user: "
	         "root)",
	         id, v[0] ? v : "(unknown version)", DEPLOY_HOSTS_PRIVS_VERSION, what);
	return DRV_EPERM;
}

int deploy_hosts_check_privs(const struct drv_plan *p, const json_t *agents, const json_t *targets,
                             struct deploy_hosts_err *err)
{
	static const char *const hook_kinds[] = {"pre", "migrations", "post"};
	const struct drv_plan_hook *hooks[] = {p->pre, p->migrations, p->post};
	size_t n_hooks[] = {p->n_pre, p->n_migrations, p->n_post};
	const json_t *svcs = json_object_get(targets, "services"), *h;
	json_t *byid = deploy_hosts_index(agents);
	char field[160];
	size_t k;
	int rc = byid != NULL ? DRV_OK : DRV_ENOMEM;

	memset(err, 0, sizeof(*err));
	for (size_t i = 0; rc == DRV_OK && i < p->n_services; i++) {
		const struct drv_plan_service *ps = &p->services[i];

		if (!wants_privs(&ps->privs, false))
			continue;
		service_field(p, i, "user", field, sizeof(field));
		json_array_foreach(json_array_get(svcs, i), k, h)
		{
			rc = old_agent(byid, str_of(h, "agent"), field, ps->line, ps->name, err);
			if (rc != DRV_OK)
				break;
		}
	}
	for (size_t g = 0; rc == DRV_OK && g < 3; g++) {
		const json_t *lists = json_object_get(targets, hook_kinds[g]);

		for (size_t i = 0; rc == DRV_OK && i < n_hooks[g]; i++) {
			if (!wants_privs(&hooks[g][i].privs, true))
				continue;
			snprintf(field, sizeof(field), "%s[%zu].user", hook_kinds[g], i);
			json_array_foreach(json_array_get(lists, i), k, h)
			{
				rc = old_agent(byid, json_string_value(h), field, 0,
				               hooks[g][i].name, err);
				if (rc != DRV_OK)
					break;
			}
		}
	}
	json_decref(byid);
	return rc;
}

/* Every agent service i of targets t acts on: its hosts and (blue-green
 * across sets) the live set whose traffic it moves and which it stops. */
static json_t *touched(const json_t *t, size_t i)
{
	json_t *set = json_object();

	if (set != NULL &&
	    (agent_set_add(set, json_array_get(json_object_get(t, "services"), i)) != DRV_OK ||
	     agent_set_add(set, json_array_get(json_object_get(t, "live"), i)) != DRV_OK)) {
		json_decref(set);
		return NULL;
	}
	return set;
}

/* The first agent both services act on, copied into agent: one pass over
 * each (objects of their agents), not one over tb per host of ta. */
static bool common_agent(const json_t *ta, size_t i, const json_t *tb, size_t j, char *agent,
                         size_t cap)
{
	json_t *in_a = touched(ta, i), *in_b = touched(tb, j), *v;
	const char *id;
	bool found = false;

	json_object_foreach(in_a, id, v)
	{
		if (!found && json_object_get(in_b, id) != NULL) {
			snprintf(agent, cap, "%s", id);
			found = true;
		}
	}
	json_decref(in_a);
	json_decref(in_b);
	return found;
}

bool deploy_hosts_overlap(const struct drv_plan *a, const json_t *ta, const struct drv_plan *b,
                          const json_t *tb, char *service, size_t service_cap, char *agent,
                          size_t agent_cap)
{
	for (size_t i = 0; i < a->n_services; i++) {
		for (size_t j = 0; j < b->n_services; j++) {
			if (strcmp(a->services[i].name, b->services[j].name) != 0 ||
			    !common_agent(ta, i, tb, j, agent, agent_cap))
				continue;
			snprintf(service, service_cap, "%s", a->services[i].name);
			return true;
		}
	}
	return false;
}

/* ---- blue-green across host sets ---- */

static json_t *agent_ids(const json_t *hosts)
{
	json_t *ids = json_array();
	const json_t *h;
	size_t i;

	json_array_foreach(hosts, i, h)
	{
		if (ids != NULL && json_array_append(ids, json_object_get(h, "agent")) != 0) {
			json_decref(ids);
			return NULL;
		}
	}
	return ids;
}

static int choose_one(const struct drv_plan_service *ps, json_t *targets, size_t i,
                      const char *live, char *why, size_t why_cap)
{
	const struct drv_plan_strategy *st = &ps->strategy;
	const json_t *by_set = json_array_get(json_object_get(targets, "sets"), i);
	size_t to = 0;
	json_t *hosts, *ids;

	if (live != NULL) {
		while (to < st->n_sets && strcmp(st->sets[to].name, live) != 0)
			to++;
		if (to == st->n_sets) {
			snprintf(why, why_cap,
			         "service %s: its live set is \"%s\", which is none of its sets %s "
			         "and "
			         "%s: cannot tell which set is idle",
			         ps->name, live, st->sets[0].name, st->sets[1].name);
			return DRV_ESTATE;
		}
		to = 1 - to; /* the idle one */
	}
	hosts = json_object_get(by_set, st->sets[to].name);
	ids = agent_ids(json_object_get(by_set, st->sets[1 - to].name));
	if (hosts == NULL || ids == NULL ||
	    json_array_set(json_object_get(targets, "services"), i, hosts) != 0 ||
	    json_array_set_new(json_object_get(targets, "live"), i, ids) != 0 ||
	    json_array_set_new(json_object_get(targets, "choice"), i,
	                       json_pack("{s:i, s:b, s:s?}", "set", (int)to, "first", live == NULL,
	                                 "live", live)) != 0) {
		snprintf(why, why_cap, "out of memory");
		return DRV_ENOMEM;
	}
	return DRV_OK;
}

int deploy_hosts_choose_sets(const struct drv_plan *p, json_t *targets, const json_t *live,
                             char *why, size_t why_cap)
{
	json_t *lv, *ch;
	int rc = DRV_OK;

	if (json_object_get(targets, "sets") == NULL || json_object_get(targets, "choice") != NULL)
		return DRV_OK; /* no sets, or chosen already */
	lv = json_array();
	ch = json_array();
	for (size_t i = 0; lv != NULL && ch != NULL && i < p->n_services; i++) {
		if (json_array_append_new(lv, json_array()) != 0 ||
		    json_array_append_new(ch, json_null()) != 0)
			break;
	}
	if (json_array_size(ch) != p->n_services || json_object_set_new(targets, "live", lv) != 0 ||
	    json_object_set_new(targets, "choice", ch) != 0) {
		snprintf(why, why_cap, "out of memory");
		return DRV_ENOMEM;
	}
	for (size_t i = 0; rc == DRV_OK && i < p->n_services; i++) {
		const struct drv_plan_service *ps = &p->services[i];

		if (ps->strategy.n_sets > 0)
			rc = choose_one(ps, targets, i,
			                json_string_value(json_object_get(live, ps->name)), why,
			                why_cap);
	}
	if (rc != DRV_OK) {
		json_object_del(targets, "live");
		json_object_del(targets, "choice");
	}
	return rc;
}
