/*
 * plan_vars.c: variables. `{{vars.NAME}}` in a plan's env, files, commands
 * and hooks (the strings under the keys env, files, command, run, up and
 * down) is replaced, before the plan is read, by the value of NAME from the
 * environment the plan is deployed to (droverd.yaml `environments`), else
 * from the plan's own `vars`. A name neither defines is a plan error at the
 * line that uses it. The plan's `vars` member is then replaced by the
 * variables in effect, a secret one shown as "<secret>": the normalized
 * plan, the deployment object and the logs never hold a secret's name
 * beside its value (the substituted strings do hold it: they are what the
 * hosts need, sent inside signed instructions only).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "plan_int.h"

#define VAR_NAME_MAX  64
#define VAR_VALUE_MAX 65536      /* bytes of one value */
#define EXPANDED_MAX  (1u << 20) /* bytes of one string after substitution */
#define SECRET_SHOWN  "<secret>"

/* The variables in effect: name -> {"value": s, "secret": bool, "used": bool}. */
struct vars {
	json_t *map;
	bool lenient; /* offline check of a plan naming an environment: unknown kept */
};

static const char *const scoped[] = {"env", "files", "command", "run", "up", "down", NULL};

static bool is_scoped(const char *key)
{
	for (size_t i = 0; scoped[i] != NULL; i++) {
		if (strcmp(scoped[i], key) == 0)
			return true;
	}
	return false;
}

static bool valid_var_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > VAR_NAME_MAX || (!isalpha((unsigned char)*s) && *s != '_'))
		return false;
	for (; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	}
	return true;
}

static int put_var(struct vctx *c, struct vars *vs, const char *path, const char *name,
                   const char *value, bool secret)
{
	if (!valid_var_name(name)) {
		plan_verr(c, path,
		          "a variable name is 1 to %d of A-Z a-z 0-9 _, not starting with a digit",
		          VAR_NAME_MAX);
		return DRV_OK;
	}
	if (strlen(value) > VAR_VALUE_MAX || strstr(value, "{{") != NULL) {
		plan_verr(c, path, "a value is at most %d bytes and holds no \"{{\"",
		          VAR_VALUE_MAX);
		return DRV_OK;
	}
	if (json_object_set_new(vs->map, name,
	                        json_pack("{s:s, s:b, s:b}", "value", value, "secret", secret,
	                                  "used", 0)) != 0) {
		c->oom = true;
		return DRV_ENOMEM;
	}
	return DRV_OK;
}

/* The plan's own vars: a mapping of NAME: scalar. */
static void plan_vars(struct vctx *c, const json_t *root, struct vars *vs)
{
	const json_t *v = json_object_get(root, "vars"), *item;
	char ip[DRV_YJ_PATH_MAX], buf[64];
	const char *k;

	if (v == NULL || json_is_null(v))
		return;
	if (!json_is_object(v) || json_object_size(v) > DRV_PLAN_MAX_VARS) {
		plan_verr(c, "vars", "must be a mapping of at most %d NAME: value pairs",
		          DRV_PLAN_MAX_VARS);
		return;
	}
	json_object_foreach((json_t *)v, k, item)
	{
		const char *s = buf;

		plan_pjoin(ip, "vars", k);
		if (json_is_string(item))
			s = json_string_value(item);
		else if (json_is_integer(item))
			snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
			         json_integer_value(item));
		else if (json_is_boolean(item))
			snprintf(buf, sizeof(buf), "%s", json_is_true(item) ? "true" : "false");
		else if (json_is_real(item))
			snprintf(buf, sizeof(buf), "%g", json_real_value(item));
		else {
			plan_verr(c, ip, "must be a string, number or boolean");
			continue;
		}
		if (strcmp(s, SECRET_SHOWN) == 0)
			continue; /* a normalized plan's secret: the environment gives it again */
		if (put_var(c, vs, ip, k, s, false) != DRV_OK)
			return;
	}
}

/* The environment the plan goes to: the plan's `environment`, or the one
 * the deployer asked for; both given must agree. NULL: none. */
static const struct drv_plan_env *pick_env(struct vctx *c, json_t *root,
                                           const struct drv_plan_envs *envs, const char *requested,
                                           bool *lenient)
{
	const json_t *e = json_object_get(root, "environment");
	const char *named = json_string_value(e);

	*lenient = false;
	if (e != NULL && !json_is_null(e) && (named == NULL || !plan_valid_name(named))) {
		plan_verr(c, "environment",
		          "must be the name of an environment (1 to %d of "
		          "A-Z a-z 0-9 . _ -)",
		          DRV_PLAN_NAME_MAX);
		return NULL;
	}
	if (named != NULL && requested != NULL && strcmp(named, requested) != 0) {
		plan_verr(c, "environment",
		          "the plan names environment \"%s\" but is deployed to \"%s\"", named,
		          requested);
		return NULL;
	}
	if (named == NULL)
		named = requested;
	if (named == NULL)
		return NULL;
	if (envs == NULL) { /* checked offline: the environment's variables are unknown */
		*lenient = true;
		return NULL;
	}
	for (size_t i = 0; i < envs->n; i++) {
		if (strcmp(envs->v[i].name, named) == 0)
			return &envs->v[i];
	}
	plan_verr(c, "environment", "no environment named \"%s\" in droverd.yaml (%zu defined)",
	          named, envs->n);
	*lenient = true; /* its variables are unknown: that one error says it */
	return NULL;
}

/* Append n bytes to the growing string *out (length *len). */
static bool append(struct vctx *c, char **out, size_t *len, const char *s, size_t n)
{
	char *b;

	if (*len + n > EXPANDED_MAX)
		return false;
	b = realloc(*out, *len + n + 1);
	if (b == NULL) {
		c->oom = true;
		return false;
	}
	memcpy(b + *len, s, n);
	*len += n;
	b[*len] = '\0';
	*out = b;
	return true;
}

/* At s (just after "{{"): " vars.NAME }}" -> name and the end; false when
 * it is not a variable reference (left as it is). */
static bool reference(const char *s, char name[VAR_NAME_MAX + 1], const char **end)
{
	size_t n = 0;

	s += strspn(s, " ");
	if (strncmp(s, "vars.", 5) != 0)
		return false;
	s += 5;
	while (n < VAR_NAME_MAX && (isalnum((unsigned char)s[n]) || s[n] == '_'))
		n++;
	memcpy(name, s, n);
	name[n] = '\0';
	s += n;
	s += strspn(s, " ");
	if (strncmp(s, "}}", 2) != 0)
		return false;
	*end = s + 2;
	return true;
}

/* The string with every reference replaced; NULL when nothing changed or
 * on an error (reported). */
static char *expand(struct vctx *c, struct vars *vs, const char *path, const char *s)
{
	char *out = NULL, name[VAR_NAME_MAX + 1];
	size_t len = 0;
	const char *p = s, *at, *end;
	bool changed = false;

	while ((at = strstr(p, "{{")) != NULL) {
		json_t *v;

		if (!reference(at + 2, name, &end)) {
			if (!append(c, &out, &len, p, (size_t)(at + 2 - p)))
				goto fail;
			p = at + 2;
			continue;
		}
		v = json_object_get(vs->map, name);
		if (v == NULL && !vs->lenient) {
			plan_verr(c, path,
			          "unknown variable vars.%s (not in the plan's vars nor in its "
			          "environment's)",
			          name);
			goto quiet_fail;
		}
		if (v != NULL)
			json_object_set_new(v, "used", json_true());
		if (!append(c, &out, &len, p, (size_t)(at - p)) ||
		    !append(c, &out, &len, v ? json_string_value(json_object_get(v, "value")) : at,
		            v ? strlen(json_string_value(json_object_get(v, "value")))
		              : (size_t)(end - at)))
			goto fail;
		changed |= v != NULL;
		p = end;
	}
	if (!changed) {
		free(out);
		return NULL;
	}
	if (append(c, &out, &len, p, strlen(p)))
		return out;
fail:
	if (!c->oom)
		plan_verr(c, path, "longer than %u bytes once variables are filled in",
		          EXPANDED_MAX);
quiet_fail:
	free(out);
	return NULL;
}

static void walk(struct vctx *c, struct vars *vs, json_t *node, const char *path, bool in_scope)
{
	char ip[DRV_YJ_PATH_MAX];
	const char *k;
	json_t *item;
	size_t i;

	if (c->oom)
		return;
	if (json_is_string(node) && in_scope) {
		char *s = expand(c, vs, path, json_string_value(node));

		if (s != NULL && json_string_set(node, s) != 0)
			c->oom = true;
		free(s);
	} else if (json_is_object(node)) {
		json_object_foreach(node, k, item)
		{
			if (path[0] == '\0' && strcmp(k, "vars") == 0)
				continue;
			plan_pjoin(ip, path, k);
			walk(c, vs, item, ip, in_scope || is_scoped(k));
		}
	} else if (json_is_array(node)) {
		json_array_foreach(node, i, item)
		{
			plan_pindex(ip, path, i);
			walk(c, vs, item, ip, in_scope);
		}
	}
}

/* root.vars := the variables in effect (secrets shown as SECRET_SHOWN);
 * root.environment := the environment's name. Secret values that were
 * used go to secrets (a JSON array of strings). */
static void settle(struct vctx *c, json_t *root, struct vars *vs, const struct drv_plan_env *env,
                   json_t *secrets)
{
	json_t *shown = json_object(), *v;
	const char *k;

	if (shown == NULL) {
		c->oom = true;
		return;
	}
	json_object_foreach(vs->map, k, v)
	{
		bool secret = json_is_true(json_object_get(v, "secret"));
		const char *value = json_string_value(json_object_get(v, "value"));

		if (secret && json_is_true(json_object_get(v, "used")))
			json_array_append_new(secrets, json_string(value));
		json_object_set_new(shown, k, json_string(secret ? SECRET_SHOWN : value));
	}
	if (json_object_size(shown) > 0)
		json_object_set_new(root, "vars", shown);
	else
		json_decref(shown);
	if (env != NULL)
		json_object_set_new(root, "environment", json_string(env->name));
}

int plan_vars_apply(struct vctx *c, json_t *root, const struct drv_plan_envs *envs,
                    const char *requested, json_t *secrets)
{
	struct vars vs = {.map = json_object()};
	const struct drv_plan_env *env;

	if (vs.map == NULL)
		return DRV_ENOMEM;
	env = pick_env(c, root, envs, requested, &vs.lenient);
	plan_vars(c, root, &vs);
	for (size_t i = 0; env != NULL && i < env->n_vars && !c->oom; i++) {
		char p[DRV_YJ_PATH_MAX];

		snprintf(p, sizeof(p), "environment(%s).vars.%s", env->name, env->vars[i].name);
		put_var(c, &vs, p, env->vars[i].name, env->vars[i].value, env->vars[i].secret);
	}
	walk(c, &vs, root, "", false);
	if (c->nerr == 0 && !c->oom)
		settle(c, root, &vs, env, secrets);
	json_decref(vs.map);
	return c->oom ? DRV_ENOMEM : DRV_OK;
}
