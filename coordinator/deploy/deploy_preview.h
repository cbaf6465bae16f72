/*
 * deploy_preview.h: a dry run. What a plan would do to the live fleet,
 * computed the way the deployment would run: the real sequencer is driven
 * with every step succeeding at once, every manual pause promoted and every
 * timer reached, and the order in which it sends steps, switches traffic
 * and reads metrics is recorded. Nothing is sent, stored or changed.
 *
 * The result (a new reference, docs/api.md "Dry run"):
 *   {"dry_run": true, "deployment", "version", "changes", "unchanged",
 *    "offline": [agent...], "skipped": [{"agent", "status", "where"}],
 *    "phases": [{"phase", "hooks": [{"name", "hosts", "run", "down",
 *                "timeout_ms"}]}...],
 *    "tiers": [{"name", "services": [{"name", "strategy", "image", "digest",
 *        "version", "hosts": [{"id", "from_version", "from_digest",
 *        "to_version", "change": "update"|"install"|"unchanged", "online"}],
 *        "steps": [{"kind": "batch"|"canary"|"green"|"switch"|"finalize",
 *                   ...}], "health": {...}, "failure": {...},
 *        "analysis": {...}}]}],
 *    "wait_ms": the pauses and finalize delays the run would sit through}
 * "changes" counts hosts that would get another release, plus migrations.
 */
#ifndef DRV_DEPLOY_PREVIEW_H
#define DRV_DEPLOY_PREVIEW_H

#include <jansson.h>

#include "plan.h"

/* plan: validated, images pinned; targets: deploy_hosts_resolve's result;
 * agents: GET /v1/agents's list (all of them, for offline and skipped).
 * DRV_EINVAL with why when the sequencer refuses the targets; DRV_ENOMEM. */
int deploy_preview(const struct drv_plan *plan, const json_t *targets, const json_t *agents,
                   json_t **out, char *why, size_t why_cap);

#endif
