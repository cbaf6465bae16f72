/*
 * outbound.h: the URLs droverd may request on a plan's behalf.
 *
 * A plan names two kinds of URL that droverd itself requests: the webhooks
 * of `notify` (POST) and a canary's or blue-green's `analysis.http.url`
 * (GET). Whoever may deploy writes plans, so without a limit a deployer
 * could make the coordinator reach anything it can reach (its metadata
 * service, an admin port on loopback): droverd.yaml's `outbound.allow` is
 * the list of URL prefixes it may request, and nothing else is requested.
 *
 * An entry is http(s)://HOST[:PORT][/PATH]. A URL matches it when scheme,
 * host (without case) and port (80/443 by default) are the same and its path
 * is the entry's path or below it: "/hooks" covers "/hooks", "/hooks/x" and
 * "/hooks?q", never "/hooksmith". URLs with user information, dot segments
 * or encoded dots and slashes in the path match nothing.
 */
#ifndef DRV_OUTBOUND_H
#define DRV_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct drv_plan;

/* An entry of outbound.allow; the reason in why when it is not one. */
int drv_outbound_check_entry(const char *entry, char *why, size_t len);

/* Whether url is covered by an entry of allow (NULL or empty: nothing is). */
bool drv_outbound_allowed(const struct drv_strlist *allow, const char *url);

/* The first URL of plan that allow does not cover: DRV_EINVAL with its field
 * path ("notify[0].webhook", "tiers[0].services[1].strategy.analysis.http.url")
 * in field and the URL in *url (borrowed from plan); DRV_OK if all are. */
int drv_outbound_check_plan(const struct drv_strlist *allow, const struct drv_plan *plan,
                            char *field, size_t field_len, const char **url);

#endif
