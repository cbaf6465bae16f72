/*
 * plan_flags.c: feature flags of a service (`flags: { new_checkout: true }`,
 * docs/environments.md). Each flag reaches the service twice: as the
 * variable DROVER_FLAG_<NAME in upper case> (read at start) and in the file
 * /drover/flags.json of its release (a JSON object; a service with
 * `on_config: reload` re-reads it on SIGHUP). Both are ordinary env and
 * files entries from here on: delivered in the signed instruction, rolled
 * back with the release, compared by drift.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_int.h"

#define FLAGS_MAX      64
#define FLAG_NAME_MAX  64
#define FLAG_VALUE_MAX 256
#define FLAG_PREFIX    "DROVER_FLAG_"

static bool flag_name_ok(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > FLAG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)k[i]) && k[i] != '_')
			return false;
	}
	return true;
}

/* The flag's value as text for its variable; false when it is not a
 * scalar of at most FLAG_VALUE_MAX printable bytes. */
static bool flag_text(const json_t *v, char *buf, size_t cap)
{
	if (json_is_boolean(v))
		snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
	else if (json_is_integer(v))
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, cap, "%.17g", json_real_value(v));
	else if (json_is_string(v) && json_string_length(v) <= FLAG_VALUE_MAX)
		snprintf(buf, cap, "%s", json_string_value(v));
	else
		return false;
	for (const char *p = buf; *p; p++) {
		if (!isprint((unsigned char)*p))
			return false;
	}
	return true;
}

/* key: the flag's variable, DROVER_FLAG_<NAME> in upper case. */
static bool add_env(struct vctx *c, struct drv_plan_service *s, const char *key, const char *value)
{
	struct drv_plan_kv *kv = realloc(s->env, (s->n_env + 1) * sizeof(*kv));

	if (kv == NULL) {
		c->oom = true;
		return false;
	}
	s->env = kv;
	for (size_t i = 0; i < s->n_env; i++) {
		if (strcmp(s->env[i].key, key) == 0)
			return false; /* reported by the caller */
	}
	kv[s->n_env].key = plan_strdup(c, key);
	kv[s->n_env].value = plan_strdup(c, value);
	s->n_env++;
	return !c->oom;
}

static void add_file(struct vctx *c, const char *path, struct drv_plan_service *s,
                     const json_t *flags)
{
	struct drv_plan_file *f;

	for (size_t i = 0; i < s->n_files; i++) {
		if (strcmp(s->files[i].path, PLAN_FLAGS_FILE) == 0) {
			plan_verr(c, path,
			          "files names " PLAN_FLAGS_FILE " already (flags write it)");
			return;
		}
	}
	f = realloc(s->files, (s->n_files + 1) * sizeof(*f));
	if (f == NULL) {
		c->oom = true;
		return;
	}
	s->files = f;
	f[s->n_files].path = plan_strdup(c, PLAN_FLAGS_FILE);
	f[s->n_files].content = json_dumps(flags, JSON_COMPACT | JSON_SORT_KEYS);
	f[s->n_files].mode = 0640;
	if (f[s->n_files].content == NULL)
		c->oom = true;
	s->n_files++;
}

void plan_flags_read(struct vctx *c, const json_t *v, const char *path, struct drv_plan_service *s)
{
	const json_t *flags = json_object_get(v, "flags"), *item;
	char p[DRV_YJ_PATH_MAX], ip[DRV_YJ_PATH_MAX], text[FLAG_VALUE_MAX + 32];
	char key[sizeof(FLAG_PREFIX) + FLAG_NAME_MAX];
	const char *k;
	int bad = c->nerr;

	if (flags == NULL || json_is_null(flags))
		return;
	plan_pjoin(p, path, "flags");
	if (!json_is_object(flags) || json_object_size(flags) > FLAGS_MAX) {
		plan_verr(c, p,
		          "must be a mapping of at most %d NAME: value (boolean, number, "
		          "string)",
		          FLAGS_MAX);
		return;
	}
	json_object_foreach((json_t *)flags, k, item)
	{
		plan_pjoin(ip, p, k);
		snprintf(key, sizeof(key), FLAG_PREFIX "%.*s", FLAG_NAME_MAX, k);
		for (char *q = key; *q; q++)
			*q = (char)toupper((unsigned char)*q);
		if (!flag_name_ok(k))
			plan_verr(c, ip, "a flag's name is 1 to %d of A-Z a-z 0-9 _",
			          FLAG_NAME_MAX);
		else if (!flag_text(item, text, sizeof(text)))
			plan_verr(c, ip,
			          "a flag's value is a boolean, a number or a string of at most %d "
			          "printable bytes",
			          FLAG_VALUE_MAX);
		else if (!add_env(c, s, key, text) && !c->oom)
			plan_verr(c, ip, "env sets %s already (flags set it)", key);
	}
	if (c->nerr == bad && !c->oom)
		add_file(c, p, s, flags);
}
