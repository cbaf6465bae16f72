/* clock.c: clocks, deadlines and duration parsing. */
#include "clock.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"

static int64_t ts_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t drv_mono_ms(void)
{
	return ts_ms(CLOCK_MONOTONIC);
}

int64_t drv_wall_ms(void)
{
	return ts_ms(CLOCK_REALTIME);
}

struct timespec drv_mono_timespec_in(int64_t ms)
{
	struct timespec ts;

	if (ms < 0)
		ms = 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

struct drv_deadline drv_deadline_in(int64_t ms)
{
	struct drv_deadline d = {.at_ms = drv_mono_ms() + (ms < 0 ? 0 : ms)};
	return d;
}

struct drv_deadline drv_deadline_never(void)
{
	struct drv_deadline d = {.at_ms = INT64_MAX};
	return d;
}

bool drv_deadline_passed(struct drv_deadline d, int64_t now_mono_ms)
{
	return now_mono_ms >= d.at_ms;
}

int64_t drv_deadline_left(struct drv_deadline d, int64_t now_mono_ms, int64_t cap_ms)
{
	int64_t left = d.at_ms == INT64_MAX ? INT64_MAX : d.at_ms - now_mono_ms;

	if (left < 0)
		left = 0;
	if (cap_ms >= 0 && left > cap_ms)
		left = cap_ms;
	return left;
}

int drv_parse_duration_ms(const char *s, int64_t *out_ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"", 1000}};
	char *end;
	double v;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return DRV_EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || v < 0 || v > 1e9)
		return DRV_EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			*out_ms = (int64_t)(v * (double)units[i].ms);
			return DRV_OK;
		}
	}
	return DRV_EINVAL;
}
