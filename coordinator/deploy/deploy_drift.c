/* deploy_drift.c: drift and convergence (see deploy_drift.h). */
#include "deploy_drift.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy_store.h"
#include "err.h"
#include "fileshash.h"

static const char *str_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static int64_t int_of(const json_t *o, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(o, k));
}

static bool in_list(const json_t *hosts, const char *id)
{
	const json_t *h;
	size_t i;

	json_array_foreach(hosts, i, h)
	{
		if (strcmp(str_of(h, "id"), id) == 0)
			return true;
	}
	return false;
}

/* ---- the baseline ---- */

/* The plan's files of one service ({PATH: {"content", "mode"}}) digested
 * as the agent digests them on disk. */
static void plan_files_hash(const json_t *svc, char out[DRV_DIGEST_STR])
{
	const json_t *files = json_object_get(svc, "files"), *f;
	size_t n = json_object_size(files), i = 0;
	struct drv_file_ref *v = calloc(n ? n : 1, sizeof(*v));
	const char *path;

	out[0] = '\0';
	if (v == NULL)
		return;
	json_object_foreach((json_t *)files, path, f)
	{
		const char *c = str_of(f, "content");
		v[i].path = path;
		v[i].content = (const uint8_t *)c;
		v[i].len = strlen(c);
		i++;
	}
	drv_files_hash(v, n, out);
	free(v);
}

static const json_t *plan_service(const json_t *plan, const char *name)
{
	const json_t *tier, *svc;
	size_t i, j;

	json_array_foreach(json_object_get(plan, "tiers"), i, tier)
	{
		json_array_foreach(json_object_get(tier, "services"), j, svc)
		{
			if (strcmp(str_of(svc, "name"), name) == 0)
				return svc;
		}
	}
	return NULL;
}

static json_t *ok_hosts(const json_t *view_svc)
{
	json_t *arr = json_array(), *h;
	size_t i;

	json_array_foreach(json_object_get(view_svc, "hosts"), i, h)
	{
		if (strcmp(str_of(h, "state"), "succeeded") == 0)
			json_array_append_new(arr, json_pack("{s:s, s:I}", "id", str_of(h, "id"),
			                                     "finished_ms",
			                                     (json_int_t)int_of(h, "finished_ms")));
	}
	return arr;
}

struct base_ctx {
	json_t *services, *plans, *touched; /* touched: service -> host -> last finished_ms */
};

static void touch(struct base_ctx *b, const char *service, const json_t *vs)
{
	json_t *m = json_object_get(b->touched, service), *h;
	size_t i;

	if (m == NULL) {
		m = json_object();
		json_object_set_new(b->touched, service, m);
	}
	json_array_foreach(json_object_get(vs, "hosts"), i, h)
	{
		int64_t t = int_of(h, "finished_ms");
		if (t > int_of(m, str_of(h, "id")))
			json_object_set_new(m, str_of(h, "id"), json_integer((json_int_t)t));
	}
}

/* A newer deployment of the same release (a converge) came first: add the
 * hosts it did not cover, and take the older (original) host selector. */
static void extend(json_t *entry, const json_t *ps, const json_t *vs)
{
	json_t *hosts = json_object_get(entry, "hosts"), *more = ok_hosts(vs), *h;
	size_t i;

	json_array_foreach(more, i, h)
	{
		if (!in_list(hosts, str_of(h, "id")))
			json_array_append(hosts, h);
	}
	json_decref(more);
	json_object_set(entry, "selector", json_object_get(ps, "hosts"));
}

static void add_service(struct base_ctx *b, const struct deploy_row *r, const json_t *plan,
                        const json_t *vs)
{
	const char *name = str_of(vs, "name");
	const json_t *ps = plan_service(plan, name);
	json_t *entry = json_object_get(b->services, name);
	char files[DRV_DIGEST_STR];

	touch(b, name, vs);
	if (ps == NULL || strcmp(r->state, "succeeded") != 0)
		return;
	if (entry != NULL) {
		if (!json_is_true(json_object_get(entry, "closed")) &&
		    strcmp(str_of(entry, "digest"), str_of(vs, "digest")) == 0)
			extend(entry, ps, vs);
		else
			json_object_set_new(entry, "closed", json_true());
		return;
	}
	plan_files_hash(ps, files);
	json_object_set_new(b->services, name,
	                    json_pack("{s:s, s:s, s:s, s:s, s:o, s:O*}", "deployment", r->id,
	                              "version", str_of(ps, "version"), "digest",
	                              str_of(vs, "digest"), "files_hash", files, "hosts",
	                              ok_hosts(vs), "selector", json_object_get(ps, "hosts")));
	if (json_object_get(b->plans, r->id) == NULL)
		json_object_set(b->plans, r->id, (json_t *)plan);
}

static int one_row(void *arg, struct deploy_row *r)
{
	struct base_ctx *b = arg;
	json_t *plan = r->plan ? json_loads(r->plan, 0, NULL) : NULL;
	json_t *view = r->view ? json_loads(r->view, 0, NULL) : NULL;
	const json_t *tier, *vs;
	size_t i, j;

	json_array_foreach(json_object_get(view, "tiers"), i, tier)
	{
		json_array_foreach(json_object_get(tier, "services"), j, vs)
		        add_service(b, r, plan, vs);
	}
	json_decref(plan);
	json_decref(view);
	return DRV_OK;
}

int deploy_drift_baseline(struct drv_sql *db, json_t **out)
{
	struct base_ctx b = {json_object(), json_object(), json_object()};
	int rc = b.services && b.plans && b.touched
	                 ? deploy_store_finished(db, DRIFT_DEPLOYMENTS_MAX, one_row, &b)
	                 : DRV_ENOMEM;
	json_t *o = rc == DRV_OK ? json_pack("{s:O, s:O, s:O}", "services", b.services, "plans",
	                                     b.plans, "touched", b.touched)
	                         : NULL;

	json_decref(b.services);
	json_decref(b.plans);
	json_decref(b.touched);
	if (rc == DRV_OK && o == NULL)
		rc = DRV_ENOMEM;
	if (rc == DRV_OK)
		*out = o;
	return rc;
}

/* ---- drift ---- */

/* Agents or hosts by id (the first of an id), so that a fleet's drift is
 * O(hosts), not O(hosts x agents): a scrape of /metrics computes it, and
 * at 5,000 agents the scans took about a second of CPU. NULL: no memory. */
static json_t *index_by_id(const json_t *arr)
{
	json_t *idx = json_object(), *v;
	size_t i;

	json_array_foreach(arr, i, v)
	{
		const char *id = str_of(v, "id");

		if (idx != NULL && json_object_get(idx, id) == NULL &&
		    json_object_set(idx, id, v) != 0) {
			json_decref(idx);
			idx = NULL;
		}
	}
	return idx;
}

/* The agent's release of the service: the expected digest if it runs,
 * else the running one, else any. */
static const json_t *release_of(const json_t *a, const char *service, const char *digest)
{
	const json_t *r, *best = NULL;
	size_t i;

	json_array_foreach(json_object_get(a, "releases"), i, r)
	{
		bool running = strcmp(str_of(r, "state"), "running") == 0;

		if (strcmp(str_of(r, "service"), service) != 0)
			continue;
		if (running && strcmp(str_of(r, "digest"), digest) == 0)
			return r;
		if (best == NULL || running)
			best = r;
	}
	return best;
}

static void add(json_t *out, const char *host, const char *service, const json_t *base,
                const char *kind, const char *actual, const char *fmt, ...)
        __attribute__((format(printf, 7, 8)));

static void add(json_t *out, const char *host, const char *service, const json_t *base,
                const char *kind, const char *actual, const char *fmt, ...)
{
	char detail[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "host", host,
	                                     "service", service, "kind", kind, "detail", detail,
	                                     "deployment", str_of(base, "deployment"),
	                                     "expected_version", str_of(base, "version"),
	                                     "actual_version", actual));
}

static void check_host(json_t *out, const char *service, const json_t *base, const json_t *h,
                       const json_t *by_id, int64_t touched)
{
	const char *id = str_of(h, "id"), *digest = str_of(base, "digest");
	const json_t *a = json_object_get(by_id, id), *r;
	int64_t since;

	if (a == NULL || !json_is_true(json_object_get(a, "connected"))) {
		add(out, id, service, base, "offline", "", "the agent is not connected");
		return;
	}
	r = release_of(a, service, digest);
	if (r == NULL) {
		add(out, id, service, base, "stopped", "", "%s does not run here", service);
		return;
	}
	if (strcmp(str_of(r, "state"), "failed") == 0) {
		add(out, id, service, base, "crash-looping", str_of(r, "version"),
		    "%s %s exits and is restarted (crash loop)", service, str_of(r, "version"));
		return;
	}
	if (strcmp(str_of(r, "state"), "running") != 0) {
		add(out, id, service, base, "stopped", str_of(r, "version"), "%s %s is %s", service,
		    str_of(r, "version"), str_of(r, "state"));
		return;
	}
	if (strcmp(str_of(r, "digest"), digest) != 0) {
		add(out, id, service, base, "release", str_of(r, "version"),
		    "runs %s (%.19s) instead of %s (%.19s)", str_of(r, "version"),
		    str_of(r, "digest"), str_of(base, "version"), digest);
		return;
	}
	if (str_of(r, "files_hash")[0] != '\0' &&
	    strcmp(str_of(r, "files_hash"), str_of(base, "files_hash")) != 0) {
		add(out, id, service, base, "files", str_of(r, "version"),
		    "a config file of %s differs from the plan's", service);
		return;
	}
	since = int_of(r, "alive_since_ms");
	if (touched < int_of(h, "finished_ms"))
		touched = int_of(h, "finished_ms");
	if (since > 0 && since > touched + DRIFT_RESTART_SLACK_MS)
		add(out, id, service, base, "restarted", str_of(r, "version"),
		    "its process started %lld s after the last deployment there (%lld restarts): "
		    "it "
		    "exited or was killed",
		    (long long)((since - touched) / 1000), (long long)int_of(r, "restarts"));
}

/* Does the plan's host list or label selector take agent a? */
static bool selects(const json_t *sel, const json_t *a)
{
	const json_t *v, *labels = json_object_get(sel, "labels");
	const char *k;
	size_t i;

	if (json_is_array(sel)) {
		json_array_foreach(sel, i, v)
		{
			if (strcmp(json_string_value(v) ? json_string_value(v) : "",
			           str_of(a, "id")) == 0)
				return true;
		}
		return false;
	}
	if (!json_is_object(labels) || json_object_size(labels) == 0)
		return false;
	json_object_foreach((json_t *)labels, k, v)
	{
		const char *have =
		        json_string_value(json_object_get(json_object_get(a, "labels"), k));
		if (have == NULL || !json_is_string(v) || strcmp(have, json_string_value(v)) != 0)
			return false;
	}
	return true;
}

static void check_missed(json_t *out, const char *service, const json_t *base, const json_t *agents,
                         const json_t *listed)
{
	const json_t *a;
	size_t i;

	json_array_foreach(agents, i, a)
	{
		if (strcmp(str_of(a, "status"), "accepted") != 0 ||
		    json_object_get(listed, str_of(a, "id")) != NULL ||
		    !selects(json_object_get(base, "selector"), a))
			continue;
		if (release_of(a, service, str_of(base, "digest")) != NULL &&
		    strcmp(str_of(release_of(a, service, str_of(base, "digest")), "digest"),
		           str_of(base, "digest")) == 0)
			continue; /* it runs the release anyway */
		add(out, str_of(a, "id"), service, base, "missed", "",
		    "the hosts of %s select it, but %s did not run there (offline or absent then)",
		    service, str_of(base, "deployment"));
	}
}

json_t *deploy_drift_compute(const json_t *baseline, const json_t *agents)
{
	json_t *out = json_array(), *seen = json_object(), *by_id = index_by_id(agents), *base, *h,
	       *v;
	const char *service;
	size_t i;

	if (out == NULL || seen == NULL || by_id == NULL) {
		json_decref(out);
		json_decref(seen);
		json_decref(by_id);
		return NULL;
	}
	json_object_foreach(json_object_get(baseline, "services"), service, base)
	{
		const json_t *t = json_object_get(json_object_get(baseline, "touched"), service);
		json_t *listed = index_by_id(json_object_get(base, "hosts"));

		if (listed == NULL) {
			json_decref(out);
			out = NULL;
			break;
		}
		json_array_foreach(json_object_get(base, "hosts"), i, h)
		        check_host(out, service, base, h, by_id, int_of(t, str_of(h, "id")));
		check_missed(out, service, base, agents, listed);
		json_decref(listed);
	}
	json_decref(by_id);
	json_array_foreach(out, i, v) json_object_set_new(seen, str_of(v, "host"), json_true());
	h = out ? json_pack("{s:o, s:I}", "hosts", out, "drifted_hosts",
	                    (json_int_t)json_object_size(seen))
	        : NULL;
	json_decref(seen);
	return h;
}

/* ---- convergence ---- */

/* The drifted hosts of service that a deployment can reach. */
static json_t *converge_hosts(const json_t *drift, const char *service)
{
	json_t *ids = json_array(), *v;
	size_t i, j;

	json_array_foreach(json_object_get(drift, "hosts"), i, v)
	{
		bool dup = false;
		const json_t *x;

		if (strcmp(str_of(v, "service"), service) != 0 ||
		    strcmp(str_of(v, "kind"), "offline") == 0)
			continue;
		json_array_foreach(ids, j, x) dup |=
		        strcmp(json_string_value(x), str_of(v, "host")) == 0;
		if (!dup)
			json_array_append_new(ids, json_string(str_of(v, "host")));
	}
	return ids;
}

/* Keep in plan's tiers only the services of `keep` (name -> host ids). */
static void narrow(json_t *plan, const json_t *keep)
{
	json_t *tiers = json_array(), *tier, *svc;
	size_t i, j;

	json_array_foreach(json_object_get(plan, "tiers"), i, tier)
	{
		json_t *svcs = json_array();

		json_array_foreach(json_object_get(tier, "services"), j, svc)
		{
			const json_t *ids = json_object_get(keep, str_of(svc, "name"));
			if (ids == NULL)
				continue;
			json_object_set(svc, "hosts", (json_t *)ids);
			json_array_append(svcs, svc);
		}
		if (json_array_size(svcs) > 0) {
			json_object_set_new(tier, "services", svcs);
			json_array_append(tiers, tier);
		} else {
			json_decref(svcs);
		}
	}
	json_object_set_new(plan, "tiers", tiers);
	json_object_del(plan, "pre");
	json_object_del(plan, "migrations");
	json_object_del(plan, "post");
	json_object_del(plan, "notify");
}

int deploy_drift_converge_plans(const json_t *baseline, const json_t *drift, const char *service,
                                json_t **plans, char *why, size_t why_cap)
{
	json_t *by_dep = json_object(), *out = json_array(), *base, *keep;
	const char *name, *dep;

	json_object_foreach(json_object_get(baseline, "services"), name, base)
	{
		json_t *ids;

		if (service != NULL && strcmp(service, name) != 0)
			continue;
		ids = converge_hosts(drift, name);
		if (json_array_size(ids) == 0) {
			json_decref(ids);
			continue;
		}
		dep = str_of(base, "deployment");
		if (json_object_get(by_dep, dep) == NULL)
			json_object_set_new(by_dep, dep, json_object());
		json_object_set_new(json_object_get(by_dep, dep), name, ids);
	}
	json_object_foreach(by_dep, dep, keep)
	{
		json_t *plan =
		        json_deep_copy(json_object_get(json_object_get(baseline, "plans"), dep));
		if (plan == NULL)
			continue;
		narrow(plan, keep);
		json_array_append_new(out, plan);
	}
	json_decref(by_dep);
	if (json_array_size(out) == 0) {
		json_decref(out);
		snprintf(why, why_cap, "%s%s%s", service ? "service " : "nothing",
		         service ? service : "", " has drifted on no reachable host");
		return DRV_ENOENT;
	}
	*plans = out;
	return DRV_OK;
}
