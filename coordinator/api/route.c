/* route.c: path pattern matching for the HTTP route table. */
#include "route.h"

#include <stdbool.h>
#include <string.h>

#include "err.h"

/* Length of the segment starting at s (up to the next '/' or the end). */
static size_t seg_len(const char *s)
{
	return strcspn(s, "/");
}

static bool is_param(const char *seg, size_t len)
{
	return len >= 2 && seg[0] == '{' && seg[len - 1] == '}';
}

static bool param_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > DRV_ROUTE_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

static bool name_seen(const char *pattern, const char *upto, const char *name, size_t len)
{
	for (const char *s = strchr(pattern, '{'); s && s < upto; s = strchr(s + 1, '{')) {
		if (strncmp(s + 1, name, len) == 0 && s[1 + len] == '}')
			return true;
	}
	return false;
}

int drv_route_pattern_check(const char *pattern)
{
	size_t nparams = 0;

	if (!pattern || pattern[0] != '/' || strlen(pattern) > DRV_ROUTE_PATH_MAX)
		return DRV_EINVAL;
	if (strcmp(pattern, "/") == 0)
		return DRV_OK;
	for (const char *s = pattern + 1;; s += seg_len(s) + 1) {
		size_t len = seg_len(s);
		if (len == 0) /* only a trailing slash: "/ui/" is a path of its own */
			return s[0] == '\0' ? DRV_OK : DRV_EINVAL;
		if (is_param(s, len)) {
			if (!param_name_ok(s + 1, len - 2) || ++nparams > DRV_ROUTE_PARAMS_MAX ||
			    name_seen(pattern, s, s + 1, len - 2))
				return DRV_EINVAL;
		} else if (memchr(s, '{', len) || memchr(s, '}', len)) {
			return DRV_EINVAL;
		}
		if (s[len] == '\0')
			return DRV_OK;
	}
}

static int add_param(struct drv_route_params *p, const char *name, size_t name_len,
                     const char *value, size_t value_len)
{
	if (value_len == 0 || value_len > DRV_ROUTE_VALUE_MAX || p->n >= DRV_ROUTE_PARAMS_MAX ||
	    name_len > DRV_ROUTE_NAME_MAX)
		return DRV_ENOENT;
	memcpy(p->p[p->n].name, name, name_len);
	p->p[p->n].name[name_len] = '\0';
	memcpy(p->p[p->n].value, value, value_len);
	p->p[p->n].value[value_len] = '\0';
	p->n++;
	return DRV_OK;
}

int drv_route_match(const char *pattern, const char *path, struct drv_route_params *out)
{
	struct drv_route_params params = {0};
	const char *a = pattern, *b = path;

	if (!pattern || !path || path[0] != '/' || strlen(path) > DRV_ROUTE_PATH_MAX)
		return DRV_ENOENT;
	if (pattern[0] != '/')
		return DRV_ENOENT;
	for (a++, b++;; a += seg_len(a) + 1, b += seg_len(b) + 1) {
		size_t la = seg_len(a), lb = seg_len(b);
		if (is_param(a, la)) {
			if (add_param(&params, a + 1, la - 2, b, lb) != DRV_OK)
				return DRV_ENOENT;
		} else if (la != lb || memcmp(a, b, la) != 0) {
			return DRV_ENOENT;
		}
		if (a[la] == '\0' || b[lb] == '\0') {
			if (a[la] != b[lb])
				return DRV_ENOENT;
			break;
		}
	}
	*out = params;
	return DRV_OK;
}

const char *drv_route_param(const struct drv_route_params *params, const char *name)
{
	for (size_t i = 0; i < params->n; i++) {
		if (strcmp(params->p[i].name, name) == 0)
			return params->p[i].value;
	}
	return NULL;
}
