/*
 * plan_check.c: `drover plan check [--json] FILE`, offline validation.
 *
 * Every error goes to stderr as FILE:LINE: field.path: message and the exit
 * status is 2; a valid plan gets a one-screen summary (or, with --json, the
 * normalized plan) on stdout and exit status 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "plan.h"

static const char check_usage[] = "usage: drover plan check [--json] FILE\n";

static void describe_strategy(const struct drv_plan_strategy *s, char *buf, size_t cap)
{
	char d[32];

	switch (s->type) {
	case DRV_STRATEGY_ROLLING:
		snprintf(buf, cap, "rolling, max_unavailable %u%s", s->max_unavailable.value,
		         s->max_unavailable.percent ? "%" : "");
		break;
	case DRV_STRATEGY_CANARY:
		drv_plan_format_duration(s->pause_ms, d, sizeof(d));
		snprintf(buf, cap, "canary, %zu steps, pause %s%s", s->n_steps,
		         s->pause_manual ? "manual" : d,
		         s->traffic.kind == DRV_TRAFFIC_NONE ? "" : ", traffic");
		break;
	case DRV_STRATEGY_BLUEGREEN:
		drv_plan_format_duration(s->finalize_after_ms, d, sizeof(d));
		snprintf(buf, cap, "blue-green, green port %u, finalize after %s", s->green_port,
		         d);
		break;
	}
}

static void print_hooks(const char *what, const struct drv_plan_hook *h, size_t n)
{
	if (n == 0)
		return;
	printf("  %s:", what);
	for (size_t i = 0; i < n; i++)
		printf("%s %s", i ? "," : "", h[i].name);
	printf("\n");
}

static void summary(const struct drv_plan *p)
{
	size_t unpinned = 0;
	char buf[128];

	printf("plan %s %s: valid, %zu tiers, %zu services\n", p->deployment, p->version,
	       p->n_tiers, p->n_services);
	print_hooks("pre", p->pre, p->n_pre);
	print_hooks("migrations", p->migrations, p->n_migrations);
	for (size_t t = 0; t < p->n_tiers; t++) {
		printf("  tier %s:\n", p->tiers[t].name);
		for (size_t i = 0; i < p->tiers[t].n; i++) {
			const struct drv_plan_service *s = &p->services[p->tiers[t].first + i];

			describe_strategy(&s->strategy, buf, sizeof(buf));
			printf("    %s (%s; rollback %s)\n", s->name, buf,
			       drv_plan_rollback_name(s->failure.rollback));
			unpinned += s->digest == NULL;
		}
	}
	print_hooks("post", p->post, p->n_post);
	if (unpinned > 0)
		printf("  %zu image(s) given by tag: resolved to digests when submitted\n",
		       unpinned);
}

static int print_json(const struct drv_plan *p)
{
	json_t *j = drv_plan_to_json(p);
	char *text;

	if (j == NULL)
		return 2;
	text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (text == NULL)
		return 2;
	printf("%s\n", text);
	free(text);
	return 0;
}

int drv_plan_check_main(int argc, char **argv)
{
	struct drv_plan_errors errs = {0};
	struct drv_plan *p = NULL;
	const char *file = NULL;
	bool json = false;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return fputs(check_usage, stdout), 0;
		else if (file == NULL && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0))
			file = argv[i];
		else
			return fputs(check_usage, stderr), 2;
	}
	if (file == NULL)
		return fputs(check_usage, stderr), 2;
	rc = drv_plan_parse_file(file, &p, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	drv_plan_errors_free(&errs);
	if (rc != DRV_OK)
		return 2;
	rc = json ? print_json(p) : (summary(p), 0);
	drv_plan_free(p);
	return rc;
}
