/* lifecycle.c: the `lifecycles` section of droverd.yaml (lifecycle.h). */
#include "lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env_conf.h"
#include "err.h"

#define SECTION "lifecycles"

static bool has_phase(const struct drv_lifecycle *lc, const char *env)
{
	for (size_t i = 0; i < lc->n; i++) {
		if (strcmp(lc->phases[i], env) == 0)
			return true;
	}
	return false;
}

static void read_phase(struct drv_cfg_rd *r, const json_t *item, const char *path,
                       struct drv_lifecycle *lc)
{
	const char *env = json_string_value(item);

	if (env == NULL || !drv_cfg_name_ok(env)) {
		drv_cfg_rd_err(r, path, "a phase is the name of an environment");
		return;
	}
	if (has_phase(lc, env)) {
		drv_cfg_rd_err(r, path, "%s is a phase twice", env);
		return;
	}
	snprintf(lc->phases[lc->n++], sizeof(lc->phases[0]), "%s", env);
}

static int read_one(struct drv_cfg_rd *r, const char *name, const json_t *v, void *elem)
{
	struct drv_lifecycle *lc = elem;
	const json_t *phases = json_object_get(v, "phases"), *item;
	char path[DRV_CFG_NAME_MAX + 32], ip[DRV_CFG_NAME_MAX + 64];
	size_t i;

	snprintf(path, sizeof(path), SECTION ".%s", name);
	if (!drv_cfg_name_ok(name)) {
		drv_cfg_rd_err(r, path, "a lifecycle's name is 1 to 63 of A-Z a-z 0-9 . _ -");
		return DRV_OK;
	}
	if (!json_is_object(v) || json_object_size(v) != 1 || !json_is_array(phases) ||
	    json_array_size(phases) < 2 || json_array_size(phases) > DRV_LIFECYCLE_PHASES_MAX) {
		drv_cfg_rd_err(r, path, "must be { phases: [ENV, ENV, ...] }: 2 to %d environments",
		               DRV_LIFECYCLE_PHASES_MAX);
		return DRV_OK;
	}
	snprintf(lc->name, sizeof(lc->name), "%s", name);
	json_array_foreach(phases, i, item)
	{
		snprintf(ip, sizeof(ip), "%s.phases[%zu]", path, i);
		read_phase(r, item, ip, lc);
	}
	return DRV_OK;
}

static void free_one(void *elem)
{
	(void)elem;
}

static const struct drv_cfg_section sec = {
        .key = SECTION,
        .what = "lifecycles",
        .max = DRV_LIFECYCLES_MAX,
        .size = sizeof(struct drv_lifecycle),
        .read_one = read_one,
        .free_one = free_one,
};

/* An environment in two lifecycles would have two "previous" phases. */
static int check_disjoint(struct drv_cfg_rd *r, struct drv_lifecycle *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++) {
			for (size_t k = 0; k < v[j].n; k++) {
				char path[DRV_CFG_NAME_MAX + 64];

				if (!has_phase(&v[i], v[j].phases[k]))
					continue;
				snprintf(path, sizeof(path), SECTION ".%s.phases[%zu]", v[j].name,
				         k);
				drv_cfg_rd_err(r, path, "%s is a phase of lifecycle %s already",
				               v[j].phases[k], v[i].name);
			}
		}
	}
	return r->errors > 0 ? DRV_EINVAL : DRV_OK;
}

/* Every phase is an environment of droverd.yaml. */
static void check_envs(struct drv_cfg_rd *r, const struct drv_lifecycle *v, size_t n,
                       const struct drv_plan_envs *envs)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < v[i].n; k++) {
			char path[DRV_CFG_NAME_MAX + 64];

			if (drv_envs_find(envs, v[i].phases[k]) != NULL)
				continue;
			snprintf(path, sizeof(path), SECTION ".%s.phases[%zu]", v[i].name, k);
			drv_cfg_rd_err(r, path,
			               "no environment named \"%s\" in environments (%zu "
			               "defined)",
			               v[i].phases[k], envs ? envs->n : 0);
		}
	}
}

static int keep(struct drv_cfg_rd *r, int rc, void *v, size_t n, const struct drv_plan_envs *envs,
                struct drv_lifecycles *out)
{
	if (rc == DRV_OK && v != NULL) {
		check_envs(r, v, n, envs);
		rc = check_disjoint(r, v, n);
	}
	if (rc != DRV_OK) {
		free(v);
		return rc;
	}
	out->v = v;
	out->n = v != NULL ? n : 0;
	return DRV_OK;
}

int drv_lifecycles_read(const json_t *root, const struct drv_yj_lines *lines, const char *file,
                        const struct drv_plan_envs *envs, struct drv_lifecycles *out,
                        struct drv_cfg_diag *diag)
{
	struct drv_cfg_rd r = {.lines = lines, .file = file, .base_dir = ".", .diag = diag};
	void *v = NULL;
	size_t n = 0;
	int rc = drv_cfg_section_read(&sec, &r, root, &v, &n);

	return keep(&r, rc, v, n, envs, out);
}

int drv_lifecycles_parse(const char *buf, size_t len, const char *file,
                         const struct drv_plan_envs *envs, struct drv_lifecycles *out,
                         struct drv_cfg_diag *diag)
{
	struct drv_yj_lines *lines = NULL;
	json_t *root = NULL;
	int rc = drv_cfg_tree_load(buf, len, file, &root, &lines, diag);

	if (rc == DRV_OK)
		rc = drv_lifecycles_read(root, lines, file, envs, out, diag);
	json_decref(root);
	drv_yj_lines_free(lines);
	return rc;
}

void drv_lifecycles_free(struct drv_lifecycles *l)
{
	if (l == NULL)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

const char *drv_lifecycle_previous(const struct drv_lifecycles *l, const char *env,
                                   const struct drv_lifecycle **lc)
{
	if (lc != NULL)
		*lc = NULL;
	for (size_t i = 0; l != NULL && env != NULL && i < l->n; i++) {
		for (size_t k = 0; k < l->v[i].n; k++) {
			if (strcmp(l->v[i].phases[k], env) != 0)
				continue;
			if (lc != NULL)
				*lc = &l->v[i];
			return k > 0 ? l->v[i].phases[k - 1] : NULL;
		}
	}
	return NULL;
}

void drv_lifecycle_describe(const struct drv_lifecycle *lc, char *buf, size_t cap)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < lc->n && off < cap; i++) {
		int w = snprintf(buf + off, cap - off, "%s%s", i ? " -> " : "", lc->phases[i]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}
