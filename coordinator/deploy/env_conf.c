/* env_conf.c: the `environments` section of droverd.yaml (env_conf.h). */
#include "env_conf.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "cfg_section.h"
#include "clock.h"
#include "err.h"
#include "windows.h"
#include "yamljson.h"

#define SECTION "environments"

static void env_free(struct drv_plan_env *e)
{
	free(e->name);
	for (size_t i = 0; i < e->n_labels; i++) {
		free(e->labels[i].key);
		free(e->labels[i].value);
	}
	free(e->labels);
	for (size_t i = 0; i < e->n_vars; i++) {
		free(e->vars[i].name);
		if (e->vars[i].secret && e->vars[i].value != NULL)
			memset(e->vars[i].value, 0, strlen(e->vars[i].value));
		free(e->vars[i].value);
	}
	free(e->vars);
	free(e->windows);
	memset(e, 0, sizeof(*e));
}

void drv_envs_free(struct drv_plan_envs *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->n; i++)
		env_free(&e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = 0;
}

const struct drv_plan_env *drv_envs_find(const struct drv_plan_envs *e, const char *name)
{
	for (size_t i = 0; e != NULL && name != NULL && i < e->n; i++) {
		if (strcmp(e->v[i].name, name) == 0)
			return &e->v[i];
	}
	return NULL;
}

static int read_labels(struct drv_cfg_rd *r, const json_t *v, const char *path,
                       struct drv_plan_env *e)
{
	const char *k;
	json_t *item;

	if (!json_is_object(v) || json_object_size(v) > 64) {
		drv_cfg_rd_err(r, path, "must be a mapping of at most 64 label: value pairs");
		return DRV_OK;
	}
	e->labels = calloc(json_object_size(v) + 1, sizeof(*e->labels));
	if (e->labels == NULL)
		return DRV_ENOMEM;
	json_object_foreach((json_t *)v, k, item)
	{
		if (!json_is_string(item) || !drv_cfg_name_ok(k)) {
			drv_cfg_rd_err(r, path, "label %.64s: names and values are strings", k);
			continue;
		}
		e->labels[e->n_labels].key = strdup(k);
		e->labels[e->n_labels].value = strdup(json_string_value(item));
		if (e->labels[e->n_labels].key == NULL || e->labels[e->n_labels++].value == NULL)
			return DRV_ENOMEM;
	}
	return DRV_OK;
}

/* A secret file: private to droverd's user, one line. */
static int read_secret(struct drv_cfg_rd *r, const json_t *v, const char *path, char **out)
{
	const char *f = json_string_value(json_object_get(v, "secret_file"));
	char *p, *buf = NULL;
	size_t len;
	int rc;

	if (f == NULL || f[0] == '\0' || json_object_size(v) != 1) {
		drv_cfg_rd_err(r, path, "must be a value or { secret_file: FILE }");
		return DRV_OK;
	}
	p = drv_cfg_resolve(r->base_dir, f);
	if (p == NULL)
		return DRV_ENOMEM;
	rc = drv_check_private(p);
	if (rc == DRV_EPERM)
		drv_cfg_rd_err(r, path,
		               "%.100s can be read or written by group or others (chmod 600 it)",
		               p);
	else if (rc == DRV_OK)
		rc = drv_read_file(p, DRV_ENV_SECRET_MAX, &buf, &len);
	if (rc != DRV_OK && rc != DRV_EPERM)
		drv_cfg_rd_err(r, path, "cannot read %.100s: %s", p, drv_strerror(rc));
	free(p);
	if (rc != DRV_OK)
		return rc == DRV_ENOMEM ? rc : DRV_OK;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	if (strlen(buf) != len || strpbrk(buf, "\r\n") != NULL || strstr(buf, "{{") != NULL) {
		drv_cfg_rd_err(r, path, "a secret file holds one line without \"{{\"");
		memset(buf, 0, len);
		free(buf);
		return DRV_OK;
	}
	*out = buf;
	return DRV_OK;
}

static bool var_name_ok(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_')
		return false;
	for (size_t i = 0; s[i] != '\0'; i++) {
		if (i >= 64 || (!isalnum((unsigned char)s[i]) && s[i] != '_'))
			return false;
	}
	return true;
}

static int read_var(struct drv_cfg_rd *r, const char *k, const json_t *item, const char *path,
                    struct drv_plan_var *var)
{
	char buf[64];
	const char *s = NULL;

	if (!var_name_ok(k)) {
		drv_cfg_rd_err(r, path, "a variable name is 1 to 64 of A-Z a-z 0-9 _");
		return DRV_OK;
	}
	if (json_is_object(item)) {
		var->secret = true;
		if (read_secret(r, item, path, &var->value) != DRV_OK)
			return DRV_ENOMEM;
	} else if (json_is_string(item)) {
		s = json_string_value(item);
	} else if (json_is_integer(item)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(item));
		s = buf;
	} else if (json_is_boolean(item)) {
		s = json_is_true(item) ? "true" : "false";
	} else {
		drv_cfg_rd_err(r, path,
		               "must be a string, number, boolean or { secret_file: FILE }");
	}
	if (s != NULL && (strstr(s, "{{") != NULL || strlen(s) > DRV_ENV_SECRET_MAX)) {
		drv_cfg_rd_err(r, path, "a value holds no \"{{\"");
		s = NULL;
	}
	if (s != NULL && (var->value = strdup(s)) == NULL)
		return DRV_ENOMEM;
	if (var->value != NULL && (var->name = strdup(k)) == NULL)
		return DRV_ENOMEM;
	return DRV_OK;
}

static int read_vars(struct drv_cfg_rd *r, const json_t *v, const char *path,
                     struct drv_plan_env *e)
{
	char ip[DRV_YJ_PATH_MAX * 4];
	const char *k;
	json_t *item;
	int rc;

	if (!json_is_object(v) || json_object_size(v) > DRV_PLAN_MAX_VARS) {
		drv_cfg_rd_err(r, path, "must be a mapping of at most %d NAME: value pairs",
		               DRV_PLAN_MAX_VARS);
		return DRV_OK;
	}
	e->vars = calloc(json_object_size(v) + 1, sizeof(*e->vars));
	if (e->vars == NULL)
		return DRV_ENOMEM;
	json_object_foreach((json_t *)v, k, item)
	{
		struct drv_plan_var *var = &e->vars[e->n_vars];

		snprintf(ip, sizeof(ip), "%s.%s", path, k);
		rc = read_var(r, k, item, ip, var);
		if (var->name != NULL)
			e->n_vars++;
		else {
			free(var->value);
			var->value = NULL;
		}
		if (rc != DRV_OK)
			return rc;
	}
	return DRV_OK;
}

/* "25%": 25; -1 for anything but 1% to 99%. */
static int step_percent(const char *s)
{
	int n = 0;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9' && n < 1000)
		n = n * 10 + (*s++ - '0');
	return strcmp(s, "%") == 0 && n >= 1 && n <= 99 ? n : -1;
}

/* The approval's before and at_canary_step (docs/environments.md). */
static void read_approval_when(struct drv_cfg_rd *r, const json_t *v, const char *path,
                               struct drv_plan_env *e)
{
	const json_t *before = json_object_get(v, "before"),
	             *step = json_object_get(v, "at_canary_step");
	int pct = step != NULL ? step_percent(json_string_value(step)) : 0;

	if (pct < 0)
		drv_cfg_rd_err(r, path,
		               "at_canary_step must be a canary step before the last, as a "
		               "percentage such as 25%%");
	e->approval_at_step = pct > 0 ? (uint8_t)pct : 0;
	if (before != NULL && !json_is_boolean(before))
		drv_cfg_rd_err(r, path, "before must be true or false");
	e->approval_before = before != NULL ? json_is_true(before) : step == NULL;
	if (before != NULL && !e->approval_before && step == NULL)
		drv_cfg_rd_err(r, path,
		               "before: false asks for no approval: give at_canary_step, or remove "
		               "approval");
}

/* approval: { approvers: N, role: approver, allow_self: false, timeout: 24h,
 *             before: true, at_canary_step: 25% } */
static void read_approval(struct drv_cfg_rd *r, const json_t *v, const char *path,
                          struct drv_plan_env *e)
{
	static const char *const keys[] = {"approvers", "role",           "allow_self", "timeout",
	                                   "before",    "at_canary_step", NULL};
	const json_t *n = json_object_get(v, "approvers"), *self = json_object_get(v, "allow_self");
	const char *role = json_string_value(json_object_get(v, "role"));
	const char *timeout = json_string_value(json_object_get(v, "timeout"));
	const char *k;
	json_t *item;

	if (!json_is_object(v)) {
		drv_cfg_rd_err(r, path, "must be a mapping: approvers, role, allow_self, timeout");
		return;
	}
	json_object_foreach((json_t *)v, k, item)
	{
		size_t i = 0;

		while (keys[i] != NULL && strcmp(keys[i], k) != 0)
			i++;
		if (keys[i] == NULL)
			drv_cfg_rd_err(r, path,
			               "unknown field %.64s (approvers, role, allow_self, "
			               "timeout, before, at_canary_step)",
			               k);
	}
	read_approval_when(r, v, path, e);
	e->approvers = 1;
	if (n != NULL && (!json_is_integer(n) || json_integer_value(n) < 1 ||
	                  json_integer_value(n) > DRV_ENV_APPROVERS_MAX))
		drv_cfg_rd_err(r, path, "approvers must be 1 to %d", DRV_ENV_APPROVERS_MAX);
	else if (n != NULL)
		e->approvers = (int)json_integer_value(n);
	snprintf(e->approver_role, sizeof(e->approver_role), "approver");
	if (json_object_get(v, "role") != NULL &&
	    (role == NULL || (strcmp(role, "deployer") != 0 && strcmp(role, "approver") != 0 &&
	                      strcmp(role, "admin") != 0)))
		drv_cfg_rd_err(r, path, "role must be deployer, approver or admin");
	else if (role != NULL)
		snprintf(e->approver_role, sizeof(e->approver_role), "%s", role);
	if (self != NULL && !json_is_boolean(self))
		drv_cfg_rd_err(r, path, "allow_self must be true or false");
	e->allow_self = json_is_true(self);
	e->approval_timeout_ms = DRV_ENV_APPROVAL_TIMEOUT_MS;
	if (json_object_get(v, "timeout") != NULL &&
	    (timeout == NULL || drv_parse_duration_ms(timeout, &e->approval_timeout_ms) != DRV_OK ||
	     e->approval_timeout_ms < 1000 || e->approval_timeout_ms > 30 * 86400000LL))
		drv_cfg_rd_err(r, path, "timeout must be a duration from 1s to 720h such as 24h");
}

static void read_at_window(struct drv_cfg_rd *r, const json_t *v, const char *path,
                           struct drv_plan_env *e)
{
	const char *s = json_string_value(v);

	if (s == NULL || (strcmp(s, "pause") != 0 && strcmp(s, "continue") != 0))
		drv_cfg_rd_err(r, path, "must be pause (the default) or continue");
	e->continue_at_window = s != NULL && strcmp(s, "continue") == 0;
}

static int read_field(struct drv_cfg_rd *r, const char *key, const json_t *v, const char *path,
                      void *elem)
{
	struct drv_plan_env *e = elem;

	if (strcmp(key, "labels") == 0)
		return read_labels(r, v, path, e);
	if (strcmp(key, "vars") == 0)
		return read_vars(r, v, path, e);
	if (strcmp(key, "windows") == 0)
		return drv_windows_read(r, v, path, &e->windows, &e->n_windows);
	if (strcmp(key, "approval") == 0)
		read_approval(r, v, path, e);
	else if (strcmp(key, "at_window") == 0)
		read_at_window(r, v, path, e);
	else
		drv_cfg_rd_err(r, path,
		               "unknown field (labels, vars, windows, at_window, approval)");
	return DRV_OK;
}

static void free_one(void *elem)
{
	env_free(elem);
}

static void keep(void *out, void *v, size_t n)
{
	struct drv_plan_envs *o = out;

	o->v = v;
	o->n = n;
}

static const struct drv_cfg_section sec = {
        .key = SECTION,
        .what = "environments",
        .max = DRV_ENVS_MAX,
        .size = sizeof(struct drv_plan_env),
        .free_one = free_one,
        .entry = "an environment",
        .fields = "labels, vars",
        .name_off = offsetof(struct drv_plan_env, name),
        .read_field = read_field,
        .keep = keep,
};

int drv_envs_read(const json_t *root, const struct drv_yj_lines *lines, const char *file,
                  const char *base_dir, struct drv_plan_envs *out, struct drv_cfg_diag *diag)
{
	return drv_cfg_section_into(&sec, root, lines, NULL, 0, file, base_dir, diag, out);
}

int drv_envs_parse(const char *buf, size_t len, const char *file, const char *base_dir,
                   struct drv_plan_envs *out, struct drv_cfg_diag *diag)
{
	return drv_cfg_section_into(&sec, NULL, NULL, buf, len, file, base_dir, diag, out);
}
