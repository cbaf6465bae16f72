/*
 * events_cursor.h: where an event stream (GET /v1/events) stands, as the
 * client holds it: the "id:" line of each frame, sent back as
 * Last-Event-ID when the client reconnects (docs/api.md).
 *
 *   "POS"         every matching event up to id POS has been sent (all a
 *                 SQLite store ever writes; what older clients send);
 *   "POS~HOLES"   the same, but for the ids in HOLES: ranges "LO" or
 *                 "LO-HI", ascending, disjoint, below POS, joined by ","
 *                 (e.g. "1042~1037,1040-1041"). On PostgreSQL an id can
 *                 commit after higher ones (events_read.h): these are the
 *                 ids the stream was still waiting for, whose events a
 *                 resumed stream still owes, even when they committed
 *                 while the client was away.
 *
 * The text comes from a client, so the parser is strict (digits, "~",
 * "," and "-" only, no sign, no space, numbers within int64) and bounded:
 * at most DRV_EVENTS_CURSOR_LEN characters, DRV_EVENTS_CURSOR_HOLES ranges
 * covering at most DRV_EVENTS_CURSOR_IDS ids in all (so that a resumed
 * stream reads a bounded number of events for them). The writer keeps
 * within the same bounds (the highest holes first), so every cursor a
 * stream writes parses.
 */
#ifndef DRV_EVENTS_CURSOR_H
#define DRV_EVENTS_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#define DRV_EVENTS_CURSOR_HOLES 64   /* ranges, at most */
#define DRV_EVENTS_CURSOR_IDS   1000 /* ids the ranges cover, at most */
/* "POS~" and 64 ranges of two int64 numbers */
#define DRV_EVENTS_CURSOR_LEN (20 + DRV_EVENTS_CURSOR_HOLES * 40)

struct drv_events_range {
	int64_t lo, hi; /* lo <= hi */
};

struct drv_events_cursor {
	int64_t pos;
	int n_holes; /* 0: a plain id */
	struct drv_events_range holes[DRV_EVENTS_CURSOR_HOLES];
};

/* The cursor in text[0..len) (no NUL needed). DRV_ETOOBIG if longer than
 * DRV_EVENTS_CURSOR_LEN; DRV_EINVAL, with a reason in *why (static text),
 * if it breaks a rule above. *out is written only on success. */
int drv_events_cursor_parse(const char *text, size_t len, struct drv_events_cursor *out,
                            const char **why);

/* The text of position pos with the holes h[0..n) (any order, disjoint,
 * below pos; more than the bounds allow: the lowest are left out) into
 * out, NUL-terminated; cap must be above DRV_EVENTS_CURSOR_LEN. Returns
 * the length. */
size_t drv_events_cursor_format(int64_t pos, const struct drv_events_range *h, int n, char *out,
                                size_t cap);

#endif
