/* windows.c: deployment windows (windows.h). */
#include "windows.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"

#define WEEK_S (7 * 24 * 3600)

static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* The C library reads the zone from TZ: one reader at a time, TZ put back. */
static pthread_mutex_t tz_mu = PTHREAD_MUTEX_INITIALIZER;

static bool tz_name_ok(const char *s)
{
	char p[DRV_WINDOW_TEXT + 32];

	if (s[0] == '\0' || strlen(s) >= DRV_WINDOW_TEXT || s[0] == '/' ||
	    strstr(s, "..") != NULL ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") !=
	            strlen(s))
		return false;
	snprintf(p, sizeof(p), "/usr/share/zoneinfo/%s", s);
	return strcmp(s, "UTC") == 0 || access(p, R_OK) == 0;
}

/* "2026-12-20T00:00:00Z" or with "+01:00" / "-05:30". */
static bool parse_instant(const char *s, int64_t *out)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, oh = 0, om = 0, n = 0;
	char sign = 'Z';

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
		return false;
	s += n;
	if (strcmp(s, "Z") != 0 &&
	    (sscanf(s, "%c%2d:%2d%n", &sign, &oh, &om, &n) != 3 || s[n] != '\0' ||
	     (sign != '+' && sign != '-') || oh > 23 || om > 59))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = (int64_t)timegm(&tm) - (sign == '-'   ? -1
	                               : sign == '+' ? 1
	                                             : 0) *
	                                      (oh * 3600 + om * 60);
	return true;
}

static void read_days(struct drv_cfg_rd *r, const json_t *v, const char *path, struct drv_window *w)
{
	const json_t *d;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 7) {
		drv_cfg_rd_err(r, path, "must be a list of days: sun mon tue wed thu fri sat");
		return;
	}
	json_array_foreach(v, i, d)
	{
		size_t k;

		for (k = 0; k < 7; k++) {
			if (json_is_string(d) && strcmp(json_string_value(d), day_names[k]) == 0)
				break;
		}
		if (k == 7)
			drv_cfg_rd_err(r, path, "[%zu] is not a day (sun mon tue wed thu fri sat)",
			               i);
		else
			w->days |= (uint8_t)(1u << k);
	}
}

static void read_weekly(struct drv_cfg_rd *r, const json_t *v, const char *path,
                        struct drv_window *w)
{
	const char *start = json_string_value(json_object_get(v, "start"));
	const char *dur = json_string_value(json_object_get(v, "duration"));
	const char *tz = json_string_value(json_object_get(v, "timezone"));
	int64_t ms;
	int h, m, n = 0;

	w->weekly = true;
	read_days(r, json_object_get(v, "days"), path, w);
	if (start == NULL || sscanf(start, "%2d:%2d%n", &h, &m, &n) != 2 || start[n] != '\0' ||
	    h > 23 || m > 59 || h < 0 || m < 0)
		drv_cfg_rd_err(r, path, "start must be a time of day such as \"18:00\"");
	else
		w->start_min = h * 60 + m;
	if (dur == NULL || drv_parse_duration_ms(dur, &ms) != DRV_OK || ms < 60000 ||
	    ms > WEEK_S * 1000LL)
		drv_cfg_rd_err(r, path, "duration must be from 1m to 168h such as 60h");
	else
		w->duration_s = ms / 1000;
	if (tz != NULL && !tz_name_ok(tz))
		drv_cfg_rd_err(r, path, "timezone %.64s is not a known IANA time zone", tz);
	else if (tz != NULL)
		snprintf(w->tz, sizeof(w->tz), "%s", tz);
}

static void read_once(struct drv_cfg_rd *r, const json_t *v, const char *path, struct drv_window *w)
{
	const char *from = json_string_value(json_object_get(v, "from"));
	const char *until = json_string_value(json_object_get(v, "until"));

	if (from == NULL || !parse_instant(from, &w->from_s) || until == NULL ||
	    !parse_instant(until, &w->until_s) || w->until_s <= w->from_s)
		drv_cfg_rd_err(r, path,
		               "from and until must be times such as \"2026-12-20T00:00:00Z\" "
		               "(or +01:00), until after from");
}

static void read_one(struct drv_cfg_rd *r, const json_t *v, const char *path, struct drv_window *w)
{
	static const char *const keys[] = {"name",     "reason", "days",  "start", "duration",
	                                   "timezone", "from",   "until", "type",  NULL};
	const char *type = json_string_value(json_object_get(v, "type"));
	const char *name = json_string_value(json_object_get(v, "name"));
	const char *reason = json_string_value(json_object_get(v, "reason"));
	const char *k;
	json_t *item;

	if (!json_is_object(v)) {
		drv_cfg_rd_err(r, path,
		               "must be a mapping: name, days/start/duration/timezone or "
		               "from/until, reason");
		return;
	}
	json_object_foreach((json_t *)v, k, item)
	{
		size_t i = 0;

		while (keys[i] != NULL && strcmp(keys[i], k) != 0)
			i++;
		if (keys[i] == NULL)
			drv_cfg_rd_err(r, path, "unknown field %.64s", k);
	}
	if (name == NULL || !drv_cfg_name_ok(name))
		drv_cfg_rd_err(r, path, "name is required: 1 to 63 of A-Z a-z 0-9 . _ -");
	else
		snprintf(w->name, sizeof(w->name), "%s", name);
	if (reason != NULL)
		snprintf(w->reason, sizeof(w->reason), "%s", reason);
	if (json_object_get(v, "type") != NULL &&
	    (type == NULL || (strcmp(type, "allow") != 0 && strcmp(type, "deny") != 0)))
		drv_cfg_rd_err(r, path, "type must be allow or deny (the default)");
	w->allow = type != NULL && strcmp(type, "allow") == 0;
	if (json_object_get(v, "from") != NULL || json_object_get(v, "until") != NULL)
		read_once(r, v, path, w);
	else
		read_weekly(r, v, path, w);
}

int drv_windows_read(struct drv_cfg_rd *r, const json_t *v, const char *path,
                     struct drv_window **out, size_t *n)
{
	char ip[DRV_YJ_PATH_MAX * 4];
	struct drv_window *w;
	const json_t *item;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) > DRV_WINDOWS_MAX) {
		drv_cfg_rd_err(r, path, "must be a list of at most %d windows", DRV_WINDOWS_MAX);
		return DRV_OK;
	}
	w = calloc(json_array_size(v) + 1, sizeof(*w));
	if (w == NULL)
		return DRV_ENOMEM;
	json_array_foreach(v, i, item)
	{
		snprintf(ip, sizeof(ip), "%s[%zu]", path, i);
		read_one(r, item, ip, &w[i]);
	}
	*out = w;
	*n = json_array_size(v);
	return DRV_OK;
}

static bool weekly_open(const struct drv_window *w, int64_t now)
{
	char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
	bool open = false;

	pthread_mutex_lock(&tz_mu);
	setenv("TZ", w->tz[0] ? w->tz : "UTC", 1);
	tzset();
	/* each of the last 8 local days that is one of the window's days */
	for (int k = 0; k <= 8 && !open; k++) {
		time_t t = (time_t)(now - (int64_t)k * 86400);
		struct tm tm;
		time_t s;

		if (localtime_r(&t, &tm) == NULL || !(w->days & (1u << tm.tm_wday)))
			continue;
		tm.tm_hour = w->start_min / 60;
		tm.tm_min = w->start_min % 60;
		tm.tm_sec = 0;
		tm.tm_isdst = -1; /* that day's offset */
		s = mktime(&tm);
		open = s != (time_t)-1 && (int64_t)s <= now && now < (int64_t)s + w->duration_s;
	}
	if (old != NULL)
		setenv("TZ", old, 1);
	else
		unsetenv("TZ");
	tzset();
	pthread_mutex_unlock(&tz_mu);
	free(old);
	return open;
}

bool drv_window_open(const struct drv_window *w, int64_t now)
{
	if (!w->weekly)
		return w->from_s <= now && now < w->until_s;
	return weekly_open(w, now);
}

const struct drv_window *drv_windows_open(const struct drv_window *w, size_t n, int64_t now)
{
	for (size_t i = 0; w != NULL && i < n; i++) {
		if (drv_window_open(&w[i], now))
			return &w[i];
	}
	return NULL;
}

const struct drv_window *drv_windows_blocking(const struct drv_window *w, size_t n, int64_t now,
                                              bool *outside)
{
	const struct drv_window *first_allow = NULL;
	size_t i;

	*outside = false;
	for (i = 0; w != NULL && i < n; i++) {
		if (!w[i].allow && drv_window_open(&w[i], now))
			return &w[i];
	}
	for (i = 0; w != NULL && i < n; i++) {
		if (!w[i].allow)
			continue;
		if (drv_window_open(&w[i], now))
			return NULL;
		if (first_allow == NULL)
			first_allow = &w[i];
	}
	*outside = first_allow != NULL;
	return first_allow;
}

void drv_window_describe(const struct drv_window *w, char *buf, size_t cap)
{
	char days[40] = "", until[32];
	time_t u = (time_t)w->until_s;
	struct tm tm;

	if (w->weekly) {
		for (int k = 0; k < 7; k++) {
			if (w->days & (1u << k))
				snprintf(days + strlen(days), sizeof(days) - strlen(days), "%s%s",
				         days[0] ? "," : "", day_names[k]);
		}
		snprintf(buf, cap, "%s (%s %02d:%02d %s for %lldm)%s%s", w->name, days,
		         w->start_min / 60, w->start_min % 60, w->tz[0] ? w->tz : "UTC",
		         (long long)(w->duration_s / 60), w->reason[0] ? ": " : "", w->reason);
		return;
	}
	gmtime_r(&u, &tm);
	strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(buf, cap, "%s (until %s)%s%s", w->name, until, w->reason[0] ? ": " : "",
	         w->reason);
}
