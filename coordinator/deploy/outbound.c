/* outbound.c: the URLs droverd may request on a plan's behalf (outbound.h). */
#include "outbound.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "plan.h"

#define HOST_MAX 255

struct url {
	bool https;
	char host[HOST_MAX + 1]; /* lower case, no trailing dot */
	unsigned port;
	const char *path; /* into the text: '/' or empty (the root) */
	size_t path_len;  /* up to '?' or '#' */
};

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']';
}

/* What makes a path mean something else to the server than to a prefix
 * comparison: "..", "." segments, their encodings, encoded slashes,
 * backslashes. */
static bool path_plain(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\' || (unsigned char)p[i] <= ' ' || p[i] == 0x7f)
			return false;
		if (p[i] == '%' && i + 2 < n &&
		    (strncasecmp(p + i, "%2e", 3) == 0 || strncasecmp(p + i, "%2f", 3) == 0 ||
		     strncasecmp(p + i, "%5c", 3) == 0))
			return false;
		if (p[i] == '/' && i + 1 < n && p[i + 1] == '.') {
			size_t k = i + 2;

			if (k < n && p[k] == '.')
				k++;
			if (k == n || p[k] == '/')
				return false;
		}
	}
	return true;
}

static int parse_port(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;

	if (n == 0 || n > 5)
		return DRV_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return DRV_EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return DRV_EINVAL;
	*out = v;
	return DRV_OK;
}

/* Split the authority into host and port. */
static int parse_authority(const char *a, size_t n, struct url *u, const char **why)
{
	size_t host_len = n;
	const char *colon = NULL;

	for (size_t i = 0; i < n; i++) {
		if (a[i] == '@') {
			*why = "has user information (user@host)";
			return DRV_EINVAL;
		}
		if (!host_char(a[i])) {
			*why = "has a character a host name cannot have";
			return DRV_EINVAL;
		}
	}
	if (n > 0 && a[0] == '[') {
		const char *end = memchr(a, ']', n);

		if (end == NULL) {
			*why = "has an unclosed [IPv6 address]";
			return DRV_EINVAL;
		}
		host_len = (size_t)(end - a) + 1;
		if (host_len < n && a[host_len] != ':') {
			*why = "has text after the [IPv6 address]";
			return DRV_EINVAL;
		}
		colon = host_len < n ? a + host_len : NULL;
	} else {
		colon = memchr(a, ':', n);
		if (colon != NULL)
			host_len = (size_t)(colon - a);
	}
	if (host_len > 0 && a[host_len - 1] == '.')
		host_len--; /* "example.org." is "example.org" */
	if (host_len == 0 || host_len > HOST_MAX) {
		*why = "has no host, or one too long";
		return DRV_EINVAL;
	}
	for (size_t i = 0; i < host_len; i++)
		u->host[i] = (a[i] >= 'A' && a[i] <= 'Z') ? (char)(a[i] - 'A' + 'a') : a[i];
	u->host[host_len] = '\0';
	u->port = u->https ? 443 : 80;
	if (colon != NULL &&
	    parse_port(colon + 1, (size_t)(a + n - colon - 1), &u->port) != DRV_OK) {
		*why = "has a port that is not 1 to 65535";
		return DRV_EINVAL;
	}
	return DRV_OK;
}

static int parse(const char *s, struct url *u, const char **why)
{
	const char *a, *p;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (strncasecmp(s, "https://", 8) == 0) {
		u->https = true;
		a = s + 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		a = s + 7;
	} else {
		*why = "is not an http:// or https:// URL";
		return DRV_EINVAL;
	}
	n = strcspn(a, "/?#");
	if (parse_authority(a, n, u, why) != DRV_OK)
		return DRV_EINVAL;
	p = a + n;
	u->path = p;
	u->path_len = strcspn(p, "?#");
	if (!path_plain(u->path, u->path_len)) {
		*why = "has a path with dot segments, encoded dots or slashes, or blanks";
		return DRV_EINVAL;
	}
	return DRV_OK;
}

int drv_outbound_check_entry(const char *entry, char *why, size_t len)
{
	struct url u;
	const char *reason = NULL;

	if (parse(entry, &u, &reason) != DRV_OK) {
		snprintf(why, len, "'%s' %s", entry, reason);
		return DRV_EINVAL;
	}
	if (u.path[u.path_len] != '\0') {
		snprintf(why, len, "'%s' has a query or fragment: an entry is a URL prefix", entry);
		return DRV_EINVAL;
	}
	return DRV_OK;
}

/* url's path is the entry's path or below it. */
static bool path_covers(const struct url *entry, const struct url *u)
{
	const char *ep = entry->path;
	size_t en = entry->path_len;

	if (en > 0 && ep[en - 1] == '/')
		en--; /* "/hooks/" is "/hooks"; "/" is the root */
	if (en == 0)
		return true;
	if (u->path_len < en || memcmp(u->path, ep, en) != 0)
		return false;
	return u->path_len == en || u->path[en] == '/';
}

bool drv_outbound_allowed(const struct drv_strlist *allow, const char *url)
{
	struct url u, e;
	const char *why;

	if (allow == NULL || url == NULL || parse(url, &u, &why) != DRV_OK)
		return false;
	for (size_t i = 0; i < allow->n; i++) {
		if (parse(allow->v[i], &e, &why) != DRV_OK)
			continue;
		if (e.https == u.https && e.port == u.port && strcmp(e.host, u.host) == 0 &&
		    path_covers(&e, &u))
			return true;
	}
	return false;
}

int drv_outbound_check_plan(const struct drv_strlist *allow, const struct drv_plan *plan,
                            char *field, size_t field_len, const char **url)
{
	for (size_t i = 0; i < plan->n_notify; i++) {
		if (plan->notify[i].webhook == NULL ||
		    drv_outbound_allowed(allow, plan->notify[i].webhook))
			continue;
		snprintf(field, field_len, "notify[%zu].webhook", i);
		*url = plan->notify[i].webhook;
		return DRV_EINVAL;
	}
	for (size_t i = 0; i < plan->n_services; i++) {
		const struct drv_plan_service *ps = &plan->services[i];
		size_t t = ps->tier;

		if (ps->strategy.metric_url == NULL ||
		    drv_outbound_allowed(allow, ps->strategy.metric_url))
			continue;
		snprintf(field, field_len, "tiers[%zu].services[%zu].strategy.analysis.http.url", t,
		         i - plan->tiers[t].first);
		*url = ps->strategy.metric_url;
		return DRV_EINVAL;
	}
	return DRV_OK;
}
