/*
 * windows.h: deployment windows of an environment (droverd.yaml
 * `environments.NAME.windows`, docs/environments.md). A deny window (the
 * default) refuses deployments while it is open; when an environment has
 * allow windows (`type: allow`), deployments are refused outside all of
 * them:
 *
 *     windows:
 *       - name: weekend                      # weekly, in a time zone
 *         days: [fri]
 *         start: "18:00"
 *         duration: 60h                      # elapsed time, at most 7 days
 *         timezone: Europe/Berlin            # IANA name; default UTC
 *       - name: year-end                     # one-off freeze
 *         from: "2026-12-20T00:00:00Z"
 *         until: "2027-01-04T06:00:00+01:00"
 *         reason: year-end freeze
 *
 * A weekly window opens at start (wall clock of its time zone, the day's
 * own offset: DST is followed) on each of its days and stays open for
 * duration of real time. Pure apart from the C library's time zone data.
 */
#ifndef DRV_WINDOWS_H
#define DRV_WINDOWS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg_section.h"

#define DRV_WINDOWS_MAX 32
#define DRV_WINDOW_TEXT 128

struct drv_window {
	char name[DRV_CFG_NAME_MAX + 1];
	char reason[DRV_WINDOW_TEXT];
	bool allow; /* `type: allow`: deployments only while one is open */
	bool weekly;
	/* weekly */
	uint8_t days;  /* bit 0 Sunday ... bit 6 Saturday */
	int start_min; /* minutes after local midnight */
	int64_t duration_s;
	char tz[DRV_WINDOW_TEXT]; /* "" is UTC */
	/* one-off */
	int64_t from_s, until_s; /* Unix seconds */
};

/* Read a `windows` list (path names it in messages); errors go to r. On
 * DRV_OK *out (malloc'd, may be NULL when empty) and *n. */
int drv_windows_read(struct drv_cfg_rd *r, const json_t *v, const char *path,
                     struct drv_window **out, size_t *n);
/* The first window open at now (Unix seconds), or NULL (any type). */
const struct drv_window *drv_windows_open(const struct drv_window *w, size_t n, int64_t now);
/* What refuses a deployment at now: the first open deny window, else,
 * when there are allow windows and none is open, the first allow window
 * (*outside true). NULL: deployments may start. */
const struct drv_window *drv_windows_blocking(const struct drv_window *w, size_t n, int64_t now,
                                              bool *outside);
/* Is this one open at now? */
bool drv_window_open(const struct drv_window *w, int64_t now);
/* "weekend (fri 18:00 Europe/Berlin for 60h)" or "year-end (until
 * 2027-01-04T05:00:00Z): year-end freeze", for messages. */
void drv_window_describe(const struct drv_window *w, char *buf, size_t cap);

#endif
