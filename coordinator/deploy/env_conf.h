/*
 * env_conf.h: the environments an operator defines in droverd.yaml
 * (section `environments`, docs/environments.md). A plan names one
 * (`environment: staging`) or is deployed to one (`?env=staging`); its
 * label selector restricts the hosts the plan's own selectors and lists may
 * reach, and its variables fill the plan's {{vars.NAME}}, before the plan's
 * own `vars`.
 *
 *     environments:
 *       staging:
 *         labels: { env: staging }               # optional: hosts allowed
 *         vars:
 *           DB_HOST: db.staging.internal
 *           DB_PASSWORD: { secret_file: staging-db.secret }   # mode 0600
 *         windows: [...]                         # windows.h
 *         at_window: pause                       # or continue
 *         approval: { approvers: 2, role: approver, allow_self: false, timeout: 24h }
 *
 * A secret_file must be private to droverd's user (like the signing key);
 * its one line is the value, never returned by the API nor logged.
 * Every error is "FILE:LINE: environments.NAME.FIELD: message".
 */
#ifndef DRV_ENV_CONF_H
#define DRV_ENV_CONF_H

#include <jansson.h>

#include "config.h"
#include "plan.h"

struct drv_yj_lines;

#define DRV_ENVS_MAX                32
#define DRV_ENV_SECRET_MAX          65536 /* bytes of a secret file */
#define DRV_ENV_APPROVERS_MAX       10
#define DRV_ENV_APPROVAL_TIMEOUT_MS (24 * 3600 * 1000LL) /* approval.timeout default */

/* Read the `environments` member of root (absent: none). Relative paths
 * resolve against base_dir. Problems go to diag; DRV_EINVAL when there
 * was any. out must be zeroed. */
int drv_envs_read(const json_t *root, const struct drv_yj_lines *lines, const char *file,
                  const char *base_dir, struct drv_plan_envs *out, struct drv_cfg_diag *diag);
int drv_envs_parse(const char *buf, size_t len, const char *file, const char *base_dir,
                   struct drv_plan_envs *out, struct drv_cfg_diag *diag);
const struct drv_plan_env *drv_envs_find(const struct drv_plan_envs *e, const char *name);
void drv_envs_free(struct drv_plan_envs *e);

#endif
