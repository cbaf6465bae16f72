/*
 * plan_int.h: internals shared by the plan parser's files (plan_read.c:
 * typed field readers; plan_fields.c: health, strategy, failure, hooks;
 * plan_validate.c: the document). Not part of the plan API.
 *
 * Every reader takes the object, its path and a key; it returns 0 when the
 * field is absent, 1 when it was read, -1 when it was present and invalid
 * (the error is recorded). Readers write their output only on 1.
 */
#ifndef DRV_PLAN_INT_H
#define DRV_PLAN_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "plan.h"
#include "yamljson.h"

#define PLAN_DURATION_MAX_MS (7LL * 24 * 3600 * 1000)

struct verr_line {
	int line;
	char *text;
};

struct vctx {
	const struct drv_yj_lines *lines;
	const char *file;
	struct drv_plan_errors *errs;
	bool quiet; /* re-reading defaults for a service: reported once already */
	int nerr;
	bool oom;
	struct verr_line *pending; /* reported errors, sorted by line at the end */
	size_t n_pending;
};

/* plan_vars.c: fill {{vars.NAME}} in root (a tree being parsed) from the
 * environment and the plan's vars; set root's vars to those in effect and
 * its environment. Secret values used are appended to secrets. Errors go
 * to c. */
int plan_vars_apply(struct vctx *c, json_t *root, const struct drv_plan_envs *envs,
                    const char *requested, json_t *secrets);

/* plan_validate.c: every canary service of p has pct (1..99) as a step
 * before its last; else an error at path (NULL: at the service) saying who
 * asks ("the plan", "environment production"). With path, a plan without a
 * canary service is an error too. */
void plan_check_canary_step(struct vctx *c, const struct drv_plan *p, unsigned pct,
                            const char *path, const char *who);

/* plan_read.c: errors, paths, typed field readers */
__attribute__((format(printf, 3, 4))) void plan_verr(struct vctx *c, const char *path,
                                                     const char *fmt, ...);
/* Move the errors to c->errs in line order (stable). */
void plan_verr_flush(struct vctx *c);
/* out = path + "." + key (or key at the root); out holds DRV_YJ_PATH_MAX. */
void plan_pjoin(char *out, const char *path, const char *key);
void plan_pindex(char *out, const char *path, size_t i);

/* The allowed key closest to a misspelt one, or NULL. */
const char *plan_suggest(const char *key, const char *const *allowed);
/* Refuse keys that are not in allowed (NULL-terminated). */
void plan_check_keys(struct vctx *c, const json_t *obj, const char *path,
                     const char *const *allowed);
/* obj must be an object (error otherwise, returns false). */
bool plan_want_object(struct vctx *c, const json_t *v, const char *path);

char *plan_strdup(struct vctx *c, const char *s);
/* Replace *slot with a copy of s (freeing the old value). */
void plan_set_str(struct vctx *c, char **slot, const char *s);

bool plan_valid_name(const char *s);
/* "25%" -> 25; -1 if s is not a percentage in 0..100. */
int plan_parse_percent(const char *s);

int plan_read_string(struct vctx *c, const json_t *obj, const char *path, const char *key,
                     char **out);
int plan_read_name(struct vctx *c, const json_t *obj, const char *path, const char *key,
                   char **out);
int plan_read_uint(struct vctx *c, const json_t *obj, const char *path, const char *key,
                   uint32_t min, uint32_t max, uint32_t *out);
int plan_read_number(struct vctx *c, const json_t *obj, const char *path, const char *key,
                     double *out);
int plan_read_duration(struct vctx *c, const json_t *obj, const char *path, const char *key,
                       int64_t *out);
int plan_read_amount(struct vctx *c, const json_t *obj, const char *path, const char *key,
                     struct drv_plan_amount *out);
int plan_read_argv(struct vctx *c, const json_t *obj, const char *path, const char *key,
                   struct drv_plan_argv *out);
int plan_read_env(struct vctx *c, const json_t *obj, const char *path, const char *key,
                  struct drv_plan_kv **out, size_t *n_out);
int plan_read_hosts(struct vctx *c, const json_t *obj, const char *path, const char *key,
                    struct drv_plan_hosts *out);
int plan_read_files(struct vctx *c, const json_t *obj, const char *path, const char *key,
                    struct drv_plan_file **out, size_t *n_out);
int plan_read_enum(struct vctx *c, const json_t *obj, const char *path, const char *key,
                   const char *const *names, int *out);

/* plan_flags.c: `flags: {NAME: value}` of a service, as DROVER_FLAG_NAME
 * variables and the file /drover/flags.json (docs/environments.md). */
#define PLAN_FLAGS_FILE "/drover/flags.json"
void plan_flags_read(struct vctx *c, const json_t *v, const char *path, struct drv_plan_service *s);

/* plan_fields.c */
void plan_health_defaults(struct vctx *c, struct drv_plan_health *h);
void plan_health_read(struct vctx *c, const json_t *v, const char *path, struct drv_plan_health *h);
void plan_strategy_defaults(struct vctx *c, struct drv_plan_strategy *s,
                            enum drv_plan_strategy_type t);
void plan_strategy_read(struct vctx *c, const json_t *v, const char *path,
                        struct drv_plan_strategy *s);
void plan_failure_defaults(struct drv_plan_failure *f);
void plan_failure_read(struct vctx *c, const json_t *v, const char *path,
                       struct drv_plan_failure *f);
/* kind: 0 pre/post hook, 1 migration, 2 traffic hook (no name). */
void plan_hook_read(struct vctx *c, const json_t *v, const char *path, int kind,
                    struct drv_plan_hook *h);

/* plan_sets.c: `strategy.sets` (blue-green across two sets of hosts) */
void plan_sets_read(struct vctx *c, const json_t *v, const char *path, struct drv_plan_strategy *s);
void plan_sets_check(struct vctx *c, const char *path, const struct drv_plan_strategy *s);
void plan_sets_free(struct drv_plan_strategy *s);

/* plan_systemd.c: the `systemd:` mapping of a service or of defaults. */
void plan_systemd_defaults(struct drv_plan_systemd *sd);
void plan_systemd_read(struct vctx *c, const json_t *v, const char *path,
                       struct drv_plan_systemd *sd);
const char *plan_systemd_kill_mode(const struct drv_plan_systemd *sd);
const char *plan_systemd_protect(const struct drv_plan_systemd *sd);

/* plan_privs.c: user, group, capabilities, keep_setid (service = false:
 * user and group only), and the checks tying them to a service. */
void plan_privs_read(struct vctx *c, const json_t *v, const char *path, bool service,
                     struct drv_plan_privs *pr);
void plan_privs_check(struct vctx *c, const char *path, bool exec_driver, bool chroot,
                      const struct drv_plan_argv *command, const struct drv_plan_privs *pr);
bool plan_is_root(const char *user);
void plan_privs_free(struct drv_plan_privs *pr);

/* plan.c: the names of the enums (indexed by them, NULL-terminated) and
 * destructors shared with the readers. */
extern const char *const plan_strategy_names[];
extern const char *const plan_rollback_names[];
void plan_argv_free(struct drv_plan_argv *a);
void plan_kv_free(struct drv_plan_kv *kv, size_t n);
void plan_hosts_free(struct drv_plan_hosts *h);
void plan_hook_free(struct drv_plan_hook *h);
void plan_health_free(struct drv_plan_health *h);
void plan_strategy_free(struct drv_plan_strategy *s);
/* plan_prom.c: `analysis` (Prometheus checks) */
void plan_analysis_read(struct vctx *c, const json_t *v, const char *path,
                        struct drv_plan_analysis *an);
void plan_analysis_free(struct drv_plan_analysis *an);
void plan_alerts_read(struct vctx *c, const json_t *v, const char *path,
                      struct drv_plan_service *s);
void plan_alerts_free(struct drv_plan_service *s);

#endif
