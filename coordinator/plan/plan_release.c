/*
 * plan_release.c: releases (plan.h). A release is what promotion carries
 * from one environment to the next: the plan as its author wrote it, with
 * {{vars.NAME}} still in it and every image pinned to the digest resolved
 * when it was first deployed. Its id is a hash of it, so the same release
 * has the same id in every environment and a lifecycle can ask "did this
 * release succeed in staging?" by id.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "plan.h"

/* tiers[t].services[j].image := "reference@digest" for every service. */
static int pin(json_t *rel, const struct drv_plan *p)
{
	json_t *tiers = json_object_get(rel, "tiers");

	for (size_t i = 0; i < p->n_services; i++) {
		const struct drv_plan_service *s = &p->services[i];
		size_t t = s->tier, j = i - p->tiers[t].first;
		json_t *svc =
		        json_array_get(json_object_get(json_array_get(tiers, t), "services"), j);
		char *ref;
		int rc;

		if (!json_is_object(svc) || s->digest == NULL)
			return DRV_EINVAL;
		if (asprintf(&ref, "%s@%s", s->image, s->digest) < 0)
			return DRV_ENOMEM;
		rc = json_object_set_new(svc, "image", json_string(ref)) == 0 ? DRV_OK : DRV_ENOMEM;
		free(ref);
		if (rc != DRV_OK)
			return rc;
	}
	return DRV_OK;
}

json_t *drv_plan_release(const struct drv_plan *p)
{
	json_t *rel;

	if (p == NULL || p->tmpl == NULL || !drv_plan_pinned(p))
		return NULL;
	rel = json_deep_copy(p->tmpl);
	if (rel != NULL && pin(rel, p) != DRV_OK) {
		json_decref(rel);
		rel = NULL;
	}
	return rel;
}

int drv_plan_release_id(const json_t *release, char id[DRV_PLAN_RELEASE_ID_MAX])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];
	char *text = json_dumps(release, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

	if (text == NULL)
		return DRV_ENOMEM;
	crypto_hash_sha256(h, (const unsigned char *)text, strlen(text));
	free(text);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	snprintf(id, DRV_PLAN_RELEASE_ID_MAX, "rel-%.16s", hex);
	return DRV_OK;
}
