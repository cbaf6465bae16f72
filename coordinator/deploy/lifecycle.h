/*
 * lifecycle.h: lifecycles (droverd.yaml `lifecycles`, docs/environments.md
 * "Promotion"): the order in which a release goes through environments.
 *
 *     lifecycles:
 *       main:
 *         phases: [dev, staging, production]
 *
 * An environment in a lifecycle accepts only a release that succeeded in
 * the phase before it ("no release reaches production untested"): by
 * promotion of that deployment (drover promote-release ID --to ENV), or by
 * a plan whose release (same plan, same image digests) did. The first
 * phase accepts any release. An environment is in at most one lifecycle;
 * every phase must be an environment droverd.yaml defines.
 */
#ifndef DRV_LIFECYCLE_H
#define DRV_LIFECYCLE_H

#include <jansson.h>

#include "cfg_section.h"
#include "plan.h"

#define DRV_LIFECYCLES_MAX       16
#define DRV_LIFECYCLE_PHASES_MAX 16

struct drv_lifecycle {
	char name[DRV_CFG_NAME_MAX + 1];
	char phases[DRV_LIFECYCLE_PHASES_MAX][DRV_CFG_NAME_MAX + 1];
	size_t n;
};

struct drv_lifecycles {
	struct drv_lifecycle *v;
	size_t n;
};

/* Read the `lifecycles` member of root (absent: none), checking phases
 * against envs. Problems go to diag; DRV_EINVAL when there was any. out
 * must be zeroed. */
int drv_lifecycles_read(const json_t *root, const struct drv_yj_lines *lines, const char *file,
                        const struct drv_plan_envs *envs, struct drv_lifecycles *out,
                        struct drv_cfg_diag *diag);
/* The same from a whole file's text (tests, fuzzing). */
int drv_lifecycles_parse(const char *buf, size_t len, const char *file,
                         const struct drv_plan_envs *envs, struct drv_lifecycles *out,
                         struct drv_cfg_diag *diag);
void drv_lifecycles_free(struct drv_lifecycles *l);

/* The phase before env in its lifecycle (NULL: env is in none, or first);
 * *lc (may be NULL) is set to the lifecycle when env is in one. */
const char *drv_lifecycle_previous(const struct drv_lifecycles *l, const char *env,
                                   const struct drv_lifecycle **lc);
/* "dev -> staging -> production" into buf. */
void drv_lifecycle_describe(const struct drv_lifecycle *lc, char *buf, size_t cap);

#endif
