/*
 * clock.h: monotonic and wall clocks, and deadlines.
 *
 * Monotonic time measures durations and deadlines; wall time is only for
 * what crosses the wire (issued_at, expires_at) and for logs.
 */
#ifndef DRV_CLOCK_H
#define DRV_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock (arbitrary origin). */
int64_t drv_mono_ms(void);
/* Milliseconds since the Unix epoch. */
int64_t drv_wall_ms(void);

/* The monotonic time ms from now as a struct timespec: the absolute
 * timeout of pthread_cond_timedwait on a condition variable created with
 * pthread_condattr_setclock(CLOCK_MONOTONIC). ms < 0 counts as 0. */
struct timespec drv_mono_timespec_in(int64_t ms);

struct drv_deadline {
	int64_t at_ms; /* monotonic; INT64_MAX means never */
};

struct drv_deadline drv_deadline_in(int64_t ms);
struct drv_deadline drv_deadline_never(void);
bool drv_deadline_passed(struct drv_deadline d, int64_t now_mono_ms);
/* Milliseconds left (0 if passed), capped at cap_ms when cap_ms >= 0. */
int64_t drv_deadline_left(struct drv_deadline d, int64_t now_mono_ms, int64_t cap_ms);

/* Parse "250ms", "2s", "10m", "1h" or a bare number of seconds. */
int drv_parse_duration_ms(const char *s, int64_t *out_ms);

#endif
