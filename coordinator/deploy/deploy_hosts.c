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

static json_t *service_hosts(const struct drv_plan_service *ps, const json_t *agents)
{
	json_t *list = json_array();
	const json_t *a;
	size_t i;

	json_array_foreach(agents, i, a)
	{
		const json_t *rel;

		if (list == NULL || !matches(&ps->hosts, a))
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

static int service_lists(const struct drv_plan *p, const json_t *agents, const json_t *byid,
                         json_t *out, struct deploy_hosts_err *err)
{
	json_t *svcs = json_array(), *traffic = json_array();
	char field[160];
	int rc = svcs && traffic ? DRV_OK : DRV_ENOMEM;

	for (size_t i = 0; rc == DRV_OK && i < p->n_services; i++) {
		const struct drv_plan_service *ps = &p->services[i];
		const struct drv_plan_traffic *tr = &ps->strategy.traffic;

		service_field(p, i, "hosts", field, sizeof(field));
		rc = check_hosts(&ps->hosts, agents, byid, field, ps->line, err);
		if (rc == DRV_OK && tr->kind == DRV_TRAFFIC_HOOK) {
			service_field(p, i, "strategy.traffic.hook.hosts", field, sizeof(field));
			rc = check_hosts(&tr->hook.hosts, agents, byid, field, ps->line, err);
		}
		if (rc == DRV_OK &&
		    (json_array_append_new(svcs, service_hosts(ps, agents)) != 0 ||
		     json_array_append_new(traffic, tr->kind == DRV_TRAFFIC_HOOK
		                                            ? hook_hosts(&tr->hook.hosts, agents)
		                                            : json_array()) != 0))
			rc = DRV_ENOMEM;
	}
	if (rc == DRV_OK && (json_object_set(out, "services", svcs) != 0 ||
	                     json_object_set(out, "traffic", traffic) != 0))
		rc = DRV_ENOMEM;
	json_decref(svcs);
	json_decref(traffic);
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

/* The first agent both host lists (targets' "services" entries) hold: one
 * pass over each (a set of hb's agents), not one over hb per host of ha. */
static const char *common_agent(const json_t *ha, const json_t *hb)
{
	json_t *set = json_object();
	const json_t *h;
	const char *found = NULL;
	size_t i;

	json_array_foreach(hb, i, h)
	{
		if (set != NULL)
			json_object_set_new(set, str_of(h, "agent"), json_true());
	}
	json_array_foreach(ha, i, h)
	{
		if (found == NULL && json_object_get(set, str_of(h, "agent")) != NULL)
			found = str_of(h, "agent");
	}
	json_decref(set);
	return found;
}

bool deploy_hosts_overlap(const struct drv_plan *a, const json_t *ta, const struct drv_plan *b,
                          const json_t *tb, char *service, size_t service_cap, char *agent,
                          size_t agent_cap)
{
	const json_t *sa = json_object_get(ta, "services"), *sb = json_object_get(tb, "services");

	for (size_t i = 0; i < a->n_services; i++) {
		for (size_t j = 0; j < b->n_services; j++) {
			const char *id;

			if (strcmp(a->services[i].name, b->services[j].name) != 0)
				continue;
			id = common_agent(json_array_get(sa, i), json_array_get(sb, j));
			if (id == NULL)
				continue;
			snprintf(service, service_cap, "%s", a->services[i].name);
			snprintf(agent, agent_cap, "%s", id);
			return true;
		}
	}
	return false;
}
