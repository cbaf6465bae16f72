/* test_deploy_hosts.c: host lists and label selectors -> accepted agents,
 * previous releases, hook hosts, and the errors for unknown hosts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy_hosts.h"
#include "err.h"

static const char plan_text[] = "deployment: d\n"
                                "version: \"2\"\n"
                                "pre:\n"
                                "  - name: backup\n"
                                "    hosts: [db-1]\n"
                                "    run: [/bin/true]\n"
                                "tiers:\n"
                                "  - name: core\n"
                                "    services:\n"
                                "      - name: web\n"
                                "        image: r.example/web@sha256:"
                                "0000000000000000000000000000000000000000000000000000000000000000\n"
                                "        hosts: { labels: { tier: core } }\n"
                                "        command: [/bin/web]\n"
                                "        health: { http: { port: 8080 } }\n"
                                "      - name: api\n"
                                "        image: r.example/api@sha256:"
                                "0000000000000000000000000000000000000000000000000000000000000000\n"
                                "        hosts: [core-2]\n"
                                "        command: [/bin/api]\n"
                                "        health: { http: { port: 8081 } }\n";

/* core-1 runs web 1 (blue), core-2 runs nothing, core-3 is pending,
 * db-1 has no labels. */
static const char agents_text[] =
        "[{\"id\":\"core-1\",\"status\":\"accepted\",\"labels\":{\"tier\":\"core\"},"
        "  \"releases\":[{\"service\":\"web\",\"version\":\"1\",\"digest\":\"sha256:aa\","
        "                \"state\":\"stopped\",\"slot\":\"green\"},"
        "               {\"service\":\"web\",\"version\":\"1\",\"digest\":\"sha256:bb\","
        "                \"state\":\"running\",\"slot\":\"blue\"}]},"
        " {\"id\":\"core-2\",\"status\":\"accepted\",\"labels\":{\"tier\":\"core\"},"
        "  \"releases\":[]},"
        " {\"id\":\"core-3\",\"status\":\"pending\",\"labels\":{\"tier\":\"core\"}},"
        " {\"id\":\"db-1\",\"status\":\"accepted\",\"labels\":{}}]";

static struct drv_plan *parse(const char *text)
{
	struct drv_plan_errors errs = {0};
	struct drv_plan *p = NULL;
	int rc = drv_plan_parse_buffer(text, strlen(text), "t.yaml", &p, &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	drv_plan_errors_free(&errs);
	assert_int_equal(rc, DRV_OK);
	return p;
}

static const char *sget(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void resolves(void **state)
{
	struct drv_plan *p = parse(plan_text);
	json_t *agents = json_loads(agents_text, 0, NULL), *t = NULL, *web, *api;
	struct deploy_hosts_err err;

	(void)state;
	assert_int_equal(deploy_hosts_resolve(p, agents, &t, &err), DRV_OK);
	web = json_array_get(json_object_get(t, "services"), 0);
	api = json_array_get(json_object_get(t, "services"), 1);
	/* the selector takes accepted agents only (core-3 is pending) */
	assert_int_equal(json_array_size(web), 2);
	assert_string_equal(sget(json_array_get(web, 0), "agent"), "core-1");
	assert_true(json_is_true(json_object_get(json_array_get(web, 0), "prev")));
	assert_string_equal(sget(json_array_get(web, 0), "slot"), "blue"); /* the running one */
	assert_string_equal(sget(json_array_get(web, 0), "from"), "1");
	assert_string_equal(sget(json_array_get(web, 1), "agent"), "core-2");
	assert_true(json_is_false(json_object_get(json_array_get(web, 1), "prev")));
	assert_string_equal(sget(json_array_get(web, 1), "from"), "");
	assert_int_equal(json_array_size(api), 1);
	assert_string_equal(
	        json_string_value(json_array_get(json_array_get(json_object_get(t, "pre"), 0), 0)),
	        "db-1");
	assert_int_equal(json_array_size(json_object_get(t, "post")), 0);
	assert_int_equal(json_array_size(json_array_get(json_object_get(t, "traffic"), 0)), 0);
	json_decref(t);
	json_decref(agents);
	drv_plan_free(p);
}

static void refuses(const char *from, const char *to, const char *field, const char *msg)
{
	char text[sizeof(plan_text) + 64];
	const char *at = strstr(plan_text, from);
	struct drv_plan *p;
	json_t *agents = json_loads(agents_text, 0, NULL), *t = NULL;
	struct deploy_hosts_err err;

	assert_non_null(at);
	snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - plan_text), plan_text, to,
	         at + strlen(from));
	p = parse(text);
	assert_int_equal(deploy_hosts_resolve(p, agents, &t, &err), DRV_ENOENT);
	assert_null(t);
	assert_string_equal(err.field, field);
	assert_non_null(strstr(err.message, msg));
	json_decref(agents);
	drv_plan_free(p);
}

static void unknown_hosts(void **state)
{
	(void)state;
	refuses("hosts: [core-2]", "hosts: [core-2, nosuch]", "tiers[0].services[1].hosts",
	        "\"nosuch\" is unknown");
	refuses("hosts: [core-2]", "hosts: [core-3]", "tiers[0].services[1].hosts",
	        "\"core-3\" is not accepted");
	refuses("{ labels: { tier: core } }", "{ labels: { tier: edge } }",
	        "tiers[0].services[0].hosts", "matches no accepted agent");
	refuses("hosts: [db-1]", "hosts: [db-2]", "pre[0].hosts", "\"db-2\" is unknown");
}

/* ---- blue-green across host sets ---- */

static const char sets_plan[] = "deployment: d\n"
                                "version: \"2\"\n"
                                "tiers:\n"
                                "  - name: web\n"
                                "    services:\n"
                                "      - name: web\n"
                                "        image: r.example/web@sha256:"
                                "0000000000000000000000000000000000000000000000000000000000000000\n"
                                "        command: [/bin/web]\n"
                                "        port: 8080\n"
                                "        strategy:\n"
                                "          type: blue-green\n"
                                "          sets: { a: { labels: { color: a } }, b: @B@ }\n"
                                "          traffic: { balancer: lb, backend: web }\n";

static const char sets_agents[] =
        "[{\"id\":\"w-1\",\"status\":\"accepted\",\"labels\":{\"color\":\"a\"}},"
        " {\"id\":\"w-2\",\"status\":\"accepted\",\"labels\":{\"color\":\"a\"}},"
        " {\"id\":\"w-3\",\"status\":\"accepted\",\"labels\":{\"color\":\"b\"},"
        "  \"releases\":[{\"service\":\"web\",\"version\":\"1\",\"digest\":\"sha256:aa\","
        "                \"state\":\"stopped\",\"slot\":\"\"}]},"
        " {\"id\":\"w-4\",\"status\":\"pending\",\"labels\":{\"color\":\"b\"}}]";

static struct drv_plan *sets_parse(const char *b)
{
	char text[sizeof(sets_plan) + 64];
	const char *at = strstr(sets_plan, "@B@");

	snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - sets_plan), sets_plan, b, at + 3);
	return parse(text);
}

static const char *agent_at(const json_t *list, size_t i)
{
	const json_t *h = json_array_get(list, i);

	return json_is_string(h) ? json_string_value(h) : sget(h, "agent");
}

static void sets_choose(void **state)
{
	struct drv_plan *p = sets_parse("{ labels: { color: b } }");
	json_t *agents = json_loads(sets_agents, 0, NULL), *t = NULL, *t2, *live;
	struct deploy_hosts_err err;
	char why[200] = "", svc[64], agent[64];

	(void)state;
	assert_int_equal(deploy_hosts_resolve(p, agents, &t, &err), DRV_OK);
	/* before the choice: both sets (the lock covers both) */
	assert_int_equal(json_array_size(json_array_get(json_object_get(t, "services"), 0)), 3);
	assert_int_equal(json_array_size(json_object_get(
	                         json_array_get(json_object_get(t, "sets"), 0), "b")),
	                 1); /* w-4 is pending */
	t2 = json_deep_copy(t);
	/* no set was live: the first set written, a */
	assert_int_equal(deploy_hosts_choose_sets(p, t, NULL, why, sizeof(why)), DRV_OK);
	assert_int_equal(json_array_size(json_array_get(json_object_get(t, "services"), 0)), 2);
	assert_string_equal(agent_at(json_array_get(json_object_get(t, "services"), 0), 0), "w-1");
	assert_string_equal(agent_at(json_array_get(json_object_get(t, "live"), 0), 0), "w-3");
	assert_true(json_is_true(
	        json_object_get(json_array_get(json_object_get(t, "choice"), 0), "first")));
	/* chosen once: a second call changes nothing */
	live = json_pack("{s:s}", "web", "a");
	assert_int_equal(deploy_hosts_choose_sets(p, t, live, why, sizeof(why)), DRV_OK);
	assert_string_equal(agent_at(json_array_get(json_object_get(t, "services"), 0), 0), "w-1");
	/* a is live: the release goes to b, and a's hosts are the live ones */
	assert_int_equal(deploy_hosts_choose_sets(p, t2, live, why, sizeof(why)), DRV_OK);
	assert_int_equal(json_array_size(json_array_get(json_object_get(t2, "services"), 0)), 1);
	assert_string_equal(agent_at(json_array_get(json_object_get(t2, "services"), 0), 0), "w-3");
	assert_true(json_is_true(json_object_get(
	        json_array_get(json_array_get(json_object_get(t2, "services"), 0), 0), "prev")));
	assert_int_equal(json_array_size(json_array_get(json_object_get(t2, "live"), 0)), 2);
	assert_int_equal(json_integer_value(json_object_get(
	                         json_array_get(json_object_get(t2, "choice"), 0), "set")),
	                 1);
	/* the two deployments act on the same hosts (one on a's, one on b's) */
	assert_true(deploy_hosts_overlap(p, t, p, t2, svc, sizeof(svc), agent, sizeof(agent)));
	assert_string_equal(svc, "web");
	json_decref(live);
	/* a live set the plan does not name (renamed): refused, nothing chosen */
	json_decref(t2);
	assert_int_equal(deploy_hosts_resolve(p, agents, &t2, &err), DRV_OK);
	live = json_pack("{s:s}", "web", "blue");
	assert_int_equal(deploy_hosts_choose_sets(p, t2, live, why, sizeof(why)), DRV_ESTATE);
	assert_non_null(strstr(why, "\"blue\", which is none of its sets a and b"));
	assert_null(json_object_get(t2, "choice"));
	json_decref(live);
	json_decref(t2);
	json_decref(t);
	json_decref(agents);
	drv_plan_free(p);
}

static void sets_refused(const char *b, const char *msg)
{
	struct drv_plan *p = sets_parse(b);
	json_t *agents = json_loads(sets_agents, 0, NULL), *t = NULL;
	struct deploy_hosts_err err;

	assert_int_equal(deploy_hosts_resolve(p, agents, &t, &err), DRV_ENOENT);
	assert_null(t);
	assert_non_null(strstr(err.field, "tiers[0].services[0].strategy.sets."));
	if (strstr(err.message, msg) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err.message, msg);
	assert_int_equal(err.line, 12);
	json_decref(agents);
	drv_plan_free(p);
}

static void sets_checked_against_agents(void **state)
{
	(void)state;
	/* b is only a pending agent; ids vs labels overlap only the fleet shows */
	sets_refused("[w-4]", "\"w-4\" is not accepted");
	sets_refused("{ labels: { color: c } }", "the selector matches no accepted agent");
	sets_refused("[w-2, w-3]", "agent w-2 is in both sets a and b");
}

static void line_of_service(void **state)
{
	struct drv_plan *p = parse(plan_text);
	json_t *agents = json_loads("[]", 0, NULL), *t = NULL;
	struct deploy_hosts_err err;

	(void)state;
	assert_int_equal(deploy_hosts_resolve(p, agents, &t, &err), DRV_ENOENT);
	assert_string_equal(err.field, "pre[0].hosts");
	json_decref(agents);
	agents = json_loads("[{\"id\":\"db-1\",\"status\":\"accepted\"}]", 0, NULL);
	assert_int_equal(deploy_hosts_resolve(p, agents, &t, &err), DRV_ENOENT);
	assert_string_equal(err.field, "tiers[0].services[0].hosts");
	assert_int_equal(err.line, 10); /* "- name: web" */
	json_decref(agents);
	drv_plan_free(p);
}

/* A plan's targets after substituting from -> to in plan_text. */
static struct drv_plan *variant(const char *from, const char *to, json_t **t)
{
	char text[sizeof(plan_text) + 256];
	const char *at = strstr(plan_text, from);
	json_t *agents = json_loads(agents_text, 0, NULL);
	struct deploy_hosts_err err;
	struct drv_plan *p;

	assert_non_null(at);
	snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - plan_text), plan_text, to,
	         at + strlen(from));
	p = parse(text);
	assert_int_equal(deploy_hosts_resolve(p, agents, t, &err), DRV_OK);
	json_decref(agents);
	return p;
}

/* One deployment per service at a time: the same service on a common
 * host overlaps, whatever the deployment's name; another service on the
 * same host, or the same service elsewhere, does not. */
static void overlap(void **state)
{
	char svc[64] = "", agent[65] = "";
	json_t *ta, *tb, *tc, *td;
	struct drv_plan *a = variant("deployment: d", "deployment: d", &ta);
	/* another plan: web only on core-2 (through a list), api renamed */
	struct drv_plan *b = variant("hosts: { labels: { tier: core } }", "hosts: [core-2]", &tb);
	struct drv_plan *c = variant("name: web", "name: web2", &tc);
	struct drv_plan *d = variant("hosts: [core-2]\n        command: [/bin/api]",
	                             "hosts: [core-1]\n        command: [/bin/api]", &td);

	(void)state;
	assert_true(deploy_hosts_overlap(a, ta, b, tb, svc, sizeof(svc), agent, sizeof(agent)));
	assert_string_equal(svc, "web"); /* web on core-2 in both */
	assert_string_equal(agent, "core-2");
	/* c has web2 on core-1/core-2 and api on core-2: api overlaps with a */
	assert_true(deploy_hosts_overlap(c, tc, a, ta, svc, sizeof(svc), agent, sizeof(agent)));
	assert_string_equal(svc, "api");
	assert_string_equal(agent, "core-2");
	/* d has api on core-1 and web on core-1/core-2; b has web on core-2
	 * and api on core-2: web on core-2 overlaps, api does not */
	assert_true(deploy_hosts_overlap(d, td, b, tb, svc, sizeof(svc), agent, sizeof(agent)));
	assert_string_equal(svc, "web");
	/* c (web2, api@core-2) against d (web, api@core-1): nothing in common */
	svc[0] = agent[0] = '\0';
	assert_false(deploy_hosts_overlap(c, tc, d, td, svc, sizeof(svc), agent, sizeof(agent)));
	assert_string_equal(svc, ""); /* untouched */
	/* truncation is safe */
	assert_true(deploy_hosts_overlap(a, ta, b, tb, svc, 2, agent, 3));
	assert_string_equal(svc, "w");
	assert_string_equal(agent, "co");
	json_decref(ta);
	json_decref(tb);
	json_decref(tc);
	json_decref(td);
	drv_plan_free(a);
	drv_plan_free(b);
	drv_plan_free(c);
	drv_plan_free(d);
}

static void versions(void **state)
{
	(void)state;
	assert_true(deploy_hosts_version_older("0.1.0", "0.2.0"));
	assert_true(deploy_hosts_version_older("0.1.9", "0.2.0"));
	assert_true(deploy_hosts_version_older("", "0.2.0"));
	assert_true(deploy_hosts_version_older(NULL, "0.2.0"));
	assert_true(deploy_hosts_version_older("linkprobe", "0.2.0"));
	assert_false(deploy_hosts_version_older("0.2.0", "0.2.0"));
	assert_false(deploy_hosts_version_older("0.2", "0.2.0"));
	assert_false(deploy_hosts_version_older("0.10.0", "0.2.0"));
	assert_false(deploy_hosts_version_older("1.0.0", "0.2.0"));
	assert_false(deploy_hosts_version_older("0.2.0-fleetsim", "0.2.0"));
	assert_true(deploy_hosts_version_older("0.1.99-rc1", "0.2.0"));
}

/* A service that is not to run as root never goes to an agent that would
 * run it as root; root services and hooks do. */
static void old_agents_refused(void **state)
{
	struct drv_plan *p = parse(plan_text);
	json_t *agents = json_loads(agents_text, 0, NULL), *t = NULL, *a;
	struct deploy_hosts_err err;
	size_t i;

	(void)state;
	assert_int_equal(deploy_hosts_resolve(p, agents, &t, &err), DRV_OK);
	/* no version at all: older */
	assert_int_equal(deploy_hosts_check_privs(p, agents, t, &err), DRV_EPERM);
	assert_string_equal(err.field, "tiers[0].services[0].user");
	assert_non_null(strstr(err.message, "agent core-1"));
	assert_non_null(strstr(err.message, "as root"));
	json_array_foreach(agents, i, a)
	        json_object_set_new(a, "agent_version", json_string(DEPLOY_HOSTS_PRIVS_VERSION));
	assert_int_equal(deploy_hosts_check_privs(p, agents, t, &err), DRV_OK);
	/* one old agent (core-2 runs web and api) */
	json_object_set_new(json_array_get(agents, 1), "agent_version", json_string("0.1.0"));
	assert_int_equal(deploy_hosts_check_privs(p, agents, t, &err), DRV_EPERM);
	assert_string_equal(err.field, "tiers[0].services[0].user");
	assert_non_null(strstr(err.message, "agent core-2 runs drover-agent 0.1.0"));
	/* ... unless its services run as root anyway */
	p->services[0].privs.user = strdup("root");
	assert_int_equal(deploy_hosts_check_privs(p, agents, t, &err), DRV_EPERM);
	assert_string_equal(err.field, "tiers[0].services[1].user");
	p->services[1].privs.user = strdup("root");
	assert_int_equal(deploy_hosts_check_privs(p, agents, t, &err), DRV_OK);
	/* a hook with a user on an old agent is refused; root hooks are not */
	json_object_set_new(json_array_get(agents, 3), "agent_version", json_string("0.1.0"));
	assert_int_equal(deploy_hosts_check_privs(p, agents, t, &err), DRV_OK);
	p->pre[0].privs.user = strdup("backup");
	assert_int_equal(deploy_hosts_check_privs(p, agents, t, &err), DRV_EPERM);
	assert_string_equal(err.field, "pre[0].user");
	json_decref(t);
	json_decref(agents);
	drv_plan_free(p);
}

/* The index the resolution, the privilege check and the preview look agents
 * up in (one lookup per host; a scan of the fleet per host made a 10,000-
 * host plan take seconds): the first agent of an id, as the scan found it,
 * nothing for an unknown id or a NULL one. Then a fleet of 10,000: every
 * host of the selector resolved once, the privilege check names the one old
 * agent, and two deployments over all of it overlap on the first host. */
static void index_and_large_fleet(void **state)
{
	json_t *agents = json_loads(agents_text, 0, NULL), *byid, *t = NULL, *t2 = NULL;
	struct drv_plan *p = parse(plan_text);
	struct deploy_hosts_err err;
	char svc[64] = "", agent[65] = "";

	(void)state;
	json_array_append_new(agents, json_pack("{s:s, s:s, s:s}", "id", "core-1", "status",
	                                        "pending", "note", "second"));
	json_array_append_new(agents, json_pack("{s:i}", "id", 7)); /* not a string: skipped */
	byid = deploy_hosts_index(agents);
	assert_non_null(byid);
	assert_ptr_equal(deploy_hosts_find(byid, "core-1"), json_array_get(agents, 0));
	assert_ptr_equal(deploy_hosts_find(byid, "db-1"), json_array_get(agents, 3));
	assert_null(deploy_hosts_find(byid, "nobody"));
	assert_null(deploy_hosts_find(byid, NULL));
	assert_int_equal(json_object_size(byid), 4);
	json_decref(byid);
	json_decref(agents);

	agents = json_array();
	for (int i = 0; i < 10000; i++) {
		char id[32];

		snprintf(id, sizeof(id), "h-%05d", i);
		json_array_append_new(agents, json_pack("{s:s, s:s, s:s, s:{s:s}, s:[]}", "id", id,
		                                        "status", "accepted", "agent_version",
		                                        i == 9876 ? "0.1.0" : "0.2.0", "labels",
		                                        "tier", "core", "releases"));
	}
	json_array_append_new(agents, json_pack("{s:s, s:s, s:s, s:{}}", "id", "core-2", "status",
	                                        "accepted", "agent_version", "0.2.0", "labels"));
	json_array_append_new(agents, json_pack("{s:s, s:s, s:s, s:{}}", "id", "db-1", "status",
	                                        "accepted", "agent_version", "0.2.0", "labels"));
	assert_int_equal(deploy_hosts_resolve(p, agents, &t, &err), DRV_OK);
	assert_int_equal(json_array_size(json_array_get(json_object_get(t, "services"), 0)), 10000);
	assert_int_equal(deploy_hosts_check_privs(p, agents, t, &err), DRV_EPERM);
	assert_non_null(strstr(err.message, "agent h-09876 runs drover-agent 0.1.0"));
	assert_int_equal(deploy_hosts_resolve(p, agents, &t2, &err), DRV_OK);
	assert_true(deploy_hosts_overlap(p, t, p, t2, svc, sizeof(svc), agent, sizeof(agent)));
	assert_string_equal(svc, "web");
	assert_string_equal(agent, "h-00000");
	json_decref(t);
	json_decref(t2);
	json_decref(agents);
	drv_plan_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(resolves),
	        cmocka_unit_test(unknown_hosts),
	        cmocka_unit_test(line_of_service),
	        cmocka_unit_test(overlap),
	        cmocka_unit_test(versions),
	        cmocka_unit_test(old_agents_refused),
	        cmocka_unit_test(index_and_large_fleet),
	        cmocka_unit_test(sets_choose),
	        cmocka_unit_test(sets_checked_against_agents),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
