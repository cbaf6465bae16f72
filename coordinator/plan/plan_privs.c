/*
 * plan_privs.c: who a service or hook runs as: `user`, `group`,
 * `capabilities` and `keep_setid`, and the checks that tie them to the rest
 * of the service (chroot needs an unprivileged user; an exec command is an
 * absolute path without "..").
 *
 * The plan only names users; the agent resolves them on the host. A
 * service without `user` runs as the agent's default service user
 * (drover-svc); a hook without one runs as root.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "plan_int.h"

#define USER_NAME_MAX 32
#define CAPS_MAX      41

/* A POSIX-ish user or group name ([a-z_][a-z0-9_-]*, at most 32), or a
 * numeric id below 2^31. */
static bool valid_account(const char *s)
{
	size_t n = strlen(s);
	bool digits = true;

	if (n == 0 || n > USER_NAME_MAX)
		return false;
	for (const char *p = s; *p != '\0'; p++)
		digits &= isdigit((unsigned char)*p) != 0;
	if (digits)
		return n < 10 || (n == 10 && strcmp(s, "2147483647") <= 0);
	if (!(islower((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_' &&
		    *p != '-')
			return false;
	}
	return true;
}

bool plan_is_root(const char *user)
{
	return user != NULL && (strcmp(user, "root") == 0 || strcmp(user, "0") == 0);
}

static void read_account(struct vctx *c, const json_t *v, const char *path, const char *key,
                         char **slot)
{
	json_t *item = json_object_get(v, key);
	char p[DRV_YJ_PATH_MAX], num[24];
	const char *s = num;

	if (item == NULL || json_is_null(item))
		return;
	plan_pjoin(p, path, key);
	if (json_is_integer(item))
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(item));
	else if (json_is_string(item))
		s = json_string_value(item);
	else
		s = NULL;
	if (s == NULL)
		plan_verr(c, p, "must be a %s name or a numeric id", key);
	else if (!valid_account(s))
		plan_verr(c, p,
		          "\"%.40s\" is not a valid %s (lowercase letters, digits, '_', '-', at "
		          "most 32;"
		          " or a numeric id)",
		          s, key);
	else
		plan_set_str(c, slot, s);
}

/* "CAP_NET_BIND_SERVICE" or "net_bind_service": the canonical name, or NULL. */
static const char *cap_canonical(const char *s)
{
	return drv_cap_name(drv_cap_number(s));
}

static void read_caps(struct vctx *c, const json_t *v, const char *path, struct drv_plan_argv *out)
{
	json_t *list = json_object_get(v, "capabilities"), *item;
	struct drv_plan_argv a = {NULL, 0};
	char p[DRV_YJ_PATH_MAX], ip[DRV_YJ_PATH_MAX];
	size_t i;

	if (list == NULL || json_is_null(list))
		return;
	plan_pjoin(p, path, "capabilities");
	if (!json_is_array(list) || json_array_size(list) > CAPS_MAX) {
		plan_verr(c, p,
		          "must be a list of capability names such as [CAP_NET_BIND_SERVICE]");
		return;
	}
	a.v = calloc(json_array_size(list) + 1, sizeof(*a.v));
	if (a.v == NULL) {
		c->oom = true;
		return;
	}
	json_array_foreach(list, i, item)
	{
		const char *name =
		        json_is_string(item) ? cap_canonical(json_string_value(item)) : NULL;
		bool dup = false;

		plan_pindex(ip, p, i);
		if (name == NULL) {
			plan_verr(c, ip,
			          "\"%.40s\" is not a Linux capability (such as "
			          "CAP_NET_BIND_SERVICE)",
			          json_is_string(item) ? json_string_value(item) : "?");
			continue;
		}
		for (size_t k = 0; k < a.n; k++)
			dup |= strcmp(a.v[k], name) == 0;
		if (!dup && (a.v[a.n] = plan_strdup(c, name)) != NULL)
			a.n++;
	}
	plan_argv_free(out);
	*out = a;
}

void plan_privs_read(struct vctx *c, const json_t *v, const char *path, bool service,
                     struct drv_plan_privs *pr)
{
	json_t *ks = json_object_get(v, "keep_setid");
	char p[DRV_YJ_PATH_MAX];

	read_account(c, v, path, "user", &pr->user);
	read_account(c, v, path, "group", &pr->group);
	if (!service)
		return;
	read_caps(c, v, path, &pr->caps);
	if (ks != NULL && !json_is_null(ks)) {
		plan_pjoin(p, path, "keep_setid");
		if (json_is_boolean(ks))
			pr->keep_setid = json_is_true(ks);
		else
			plan_verr(c, p, "must be true or false");
	}
}

static bool has_dotdot(const char *s)
{
	for (const char *p = s; (p = strstr(p, "..")) != NULL; p += 2) {
		if ((p == s || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	}
	return false;
}

void plan_privs_check(struct vctx *c, const char *path, bool exec_driver, bool chroot,
                      const struct drv_plan_argv *command, const struct drv_plan_privs *pr)
{
	char p[DRV_YJ_PATH_MAX];

	if (chroot && plan_is_root(pr->user)) {
		plan_pjoin(p, path, "isolation");
		plan_verr(c, p,
		          "chroot needs an unprivileged user (root can leave a chroot): drop user:"
		          " root or the isolation");
	}
	if (exec_driver && command->n > 0) {
		plan_pjoin(p, path, "command");
		if (command->v[0][0] != '/')
			plan_verr(c, p, "the program must be an absolute path inside the image");
		else if (has_dotdot(command->v[0]))
			plan_verr(c, p, "the program path must not contain '..'");
	}
}

void plan_privs_free(struct drv_plan_privs *pr)
{
	free(pr->user);
	free(pr->group);
	plan_argv_free(&pr->caps);
	memset(pr, 0, sizeof(*pr));
}
