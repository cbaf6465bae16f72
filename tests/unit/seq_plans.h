/* seq_plans.h: plans and fleets shared by the sequencer tests. */
#ifndef SEQ_PLANS_H
#define SEQ_PLANS_H

#include <stdio.h>

/* 8 core, 4 supporting, 4 ui hosts, a database host and a load balancer. */
static const char *const fleet[] = {"core-1 tier=core",
                                    "core-2 tier=core",
                                    "core-3 tier=core",
                                    "core-4 tier=core",
                                    "core-5 tier=core",
                                    "core-6 tier=core",
                                    "core-7 tier=core",
                                    "core-8 tier=core",
                                    "sup-1 tier=supporting",
                                    "sup-2 tier=supporting",
                                    "sup-3 tier=supporting",
                                    "sup-4 tier=supporting",
                                    "ui-1 tier=ui",
                                    "ui-2 tier=ui",
                                    "ui-3 tier=ui",
                                    "ui-4 tier=ui",
                                    "db-1 role=db",
                                    "lb-1 role=lb",
                                    NULL};

#define PLAN_HEAD                                                                                  \
	"deployment: berrys\n"                                                                     \
	"version: \"2.4.0\"\n"                                                                     \
	"defaults:\n"                                                                              \
	"  health: { http: { port: 8080 }, deadline: 30s }\n"                                      \
	"  prestage_timeout: 2m\n"

/* One rolling service on the 8 core hosts, 25% at a time. */
static const char plan_rolling[] = PLAN_HEAD "tiers:\n"
                                             "  - name: core\n"
                                             "    services:\n"
                                             "      - name: project-coordinator\n"
                                             "        image: r.example/pc:2.4.0\n"
                                             "        hosts: { labels: { tier: core } }\n"
                                             "        command: [/bin/berry-svc]\n";

/* The runbook: backup, two migrations, three tiers, smoke test. */
static const char plan_full[] = PLAN_HEAD
        "  failure: { max_failed_hosts: 0, rollback: deployment }\n"
        "pre:\n"
        "  - { name: backup-database, hosts: [db-1], run: [/bin/berrys-db, backup] }\n"
        "migrations:\n"
        "  - { name: m41, hosts: [db-1], up: [/bin/m, up, 41], down: [/bin/m, down, 40] }\n"
        "  - { name: m42, hosts: [db-1], up: [/bin/m, up, 42], down: [/bin/m, down, 41] }\n"
        "tiers:\n"
        "  - name: core\n"
        "    services:\n"
        "      - { name: project-coordinator, image: r.example/pc:2.4.0,\n"
        "          hosts: { labels: { tier: core } }, command: [/bin/svc] }\n"
        "      - { name: agent-orchestrator, image: r.example/ao:2.4.0,\n"
        "          hosts: [core-1, core-2, core-3, core-4], command: [/bin/svc],\n"
        "          strategy: { type: rolling, max_unavailable: 1 } }\n"
        "  - name: supporting\n"
        "    services:\n"
        "      - { name: planning-system, image: r.example/ps:2.4.0,\n"
        "          hosts: { labels: { tier: supporting } }, command: [/bin/svc],\n"
        "          strategy: { type: rolling, max_unavailable: 50%, min_healthy: 2 } }\n"
        "  - name: ui\n"
        "    services:\n"
        "      - name: api-gateway\n"
        "        image: r.example/gw:2.4.0\n"
        "        hosts: { labels: { tier: ui } }\n"
        "        command: [/bin/svc]\n"
        "        strategy:\n"
        "          type: canary\n"
        "          steps: [25%, 50%, 100%]\n"
        "          pause: 30s\n"
        "          analysis: { http: { url: \"http://127.0.0.1:9/error_rate\", max: 0.01 } }\n"
        "          traffic: { balancer: lb, backend: api }\n"
        "      - name: web-dashboard\n"
        "        image: r.example/web:2.4.0\n"
        "        hosts: [ui-1, ui-2]\n"
        "        command: [/bin/svc]\n"
        "        port: 9080\n"
        "        health: { http: { port: 9080 } }\n"
        "        strategy: { type: blue-green, green_port: 9081, finalize_after: 10m,\n"
        "                    traffic: { balancer: lb, backend: web } }\n"
        "post:\n"
        "  - { name: smoke-test, hosts: [ui-1], run: [/bin/smoke] }\n"
        "notify:\n"
        "  - { webhook: \"https://hooks.example/x\" }\n";

static char plan_buf[8192];

/* A canary on the 8 core hosts; pause and extra strategy lines by the test. */
static const char canary_fmt[] = PLAN_HEAD "tiers:\n"
                                           "  - name: core\n"
                                           "    services:\n"
                                           "      - name: api-gateway\n"
                                           "        image: r.example/gw:2.4.0\n"
                                           "        hosts: { labels: { tier: core } }\n"
                                           "        command: [/bin/svc]\n"
                                           "        strategy:\n"
                                           "          type: canary\n"
                                           "          steps: [10%%, 25%%, 50%%, 100%%]\n"
                                           "          pause: %s\n"
                                           "%s";

static const char *plan_canary(const char *pause, const char *extra)
{
	snprintf(plan_buf, sizeof(plan_buf), canary_fmt, pause, extra);
	return plan_buf;
}

/* Two tiers, two services in the second, with a per-test failure policy
 * (and optionally a deployment-wide budget). */
static const char two_tiers_fmt[] =
        PLAN_HEAD "  failure: %s\n"
                  "%s"
                  "migrations:\n"
                  "  - { name: m42, hosts: [db-1], up: [/bin/m, up], down: [/bin/m, down] }\n"
                  "tiers:\n"
                  "  - name: core\n"
                  "    services:\n"
                  "      - { name: core-svc, image: r.example/c:2, command: [/bin/c],\n"
                  "          hosts: { labels: { tier: core } },\n"
                  "          strategy: { type: rolling, max_unavailable: 4 } }\n"
                  "  - name: supporting\n"
                  "    services:\n"
                  "      - { name: sup-a, image: r.example/a:2, command: [/bin/a],\n"
                  "          hosts: { labels: { tier: supporting } },\n"
                  "          strategy: { type: rolling, max_unavailable: 1 } }\n"
                  "      - { name: sup-b, image: r.example/b:2, command: [/bin/b],\n"
                  "          hosts: { labels: { tier: supporting } },\n"
                  "          strategy: { type: rolling, max_unavailable: 1 } }\n"
                  "  - name: ui\n"
                  "    services:\n"
                  "      - { name: ui-svc, image: r.example/u:2, command: [/bin/u],\n"
                  "          hosts: { labels: { tier: ui } } }\n";

static const char *plan_two_tiers(const char *failure, const char *top)
{
	snprintf(plan_buf, sizeof(plan_buf), two_tiers_fmt, failure, top);
	return plan_buf;
}

/* Blue-green on two ui hosts. */
static const char plan_bluegreen[] =
        PLAN_HEAD "tiers:\n"
                  "  - name: ui\n"
                  "    services:\n"
                  "      - name: web-dashboard\n"
                  "        image: r.example/web:2.4.0\n"
                  "        hosts: [ui-1, ui-2]\n"
                  "        command: [/bin/svc]\n"
                  "        port: 9080\n"
                  "        health: { http: { port: 9080 } }\n"
                  "        strategy: { type: blue-green, green_port: 9081, finalize_after: 10m,\n"
                  "                    analysis: { http: { url: \"http://x/m\", max: 1 } },\n"
                  "                    traffic: { balancer: lb, backend: web } }\n"
                  "post:\n"
                  "  - { name: smoke-test, hosts: [ui-1], run: [/bin/smoke] }\n";

#endif
