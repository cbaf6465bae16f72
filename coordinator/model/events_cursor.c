/* events_cursor.c: an event stream's resume point as text (events_cursor.h). */
#include "events_cursor.h"

#include <stdbool.h>
#include <stdio.h>

#include "err.h"

/* A decimal number within int64 at *p (leading zeros taken: the length cap
 * bounds them); *p moves past it. */
static bool read_num(const char **p, const char *end, int64_t *out)
{
	int64_t v = 0;
	const char *s = *p;

	if (s == end || *s < '0' || *s > '9')
		return false;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (INT64_MAX - (*s - '0')) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	*p = s;
	*out = v;
	return true;
}

static bool read_range(const char **p, const char *end, struct drv_events_range *r)
{
	if (!read_num(p, end, &r->lo))
		return false;
	r->hi = r->lo;
	if (*p < end && **p == '-') {
		(*p)++;
		return read_num(p, end, &r->hi);
	}
	return true;
}

static int bad(const char **why, const char *text)
{
	if (why != NULL)
		*why = text;
	return DRV_EINVAL;
}

/* The ranges after "~", checked against the bounds and c->pos. */
static int read_holes(const char **p, const char *end, struct drv_events_cursor *c,
                      const char **why)
{
	int64_t ids = 0, floor = 0;
	struct drv_events_range r;

	do {
		(*p)++; /* the "~" or "," */
		if (c->n_holes == DRV_EVENTS_CURSOR_HOLES)
			return bad(why, "more than 64 ranges");
		if (!read_range(p, end, &r))
			return bad(why, "a range is LO or LO-HI");
		if (r.lo <= floor || r.lo > r.hi || r.hi >= c->pos)
			return bad(why,
			           "ranges must be ascending, disjoint, above 0 and below the id");
		if (r.hi - r.lo >= DRV_EVENTS_CURSOR_IDS - ids)
			return bad(why, "the ranges cover more than 1000 ids");
		ids += r.hi - r.lo + 1;
		floor = r.hi;
		c->holes[c->n_holes++] = r;
	} while (*p < end && **p == ',');
	return DRV_OK;
}

int drv_events_cursor_parse(const char *text, size_t len, struct drv_events_cursor *out,
                            const char **why)
{
	struct drv_events_cursor c = {0};
	const char *p = text, *end = text + len;
	int rc;

	if (len > DRV_EVENTS_CURSOR_LEN) {
		bad(why, "too long");
		return DRV_ETOOBIG;
	}
	if (!read_num(&p, end, &c.pos))
		return bad(why, "must start with an event id");
	if (p < end && *p == '~' && (rc = read_holes(&p, end, &c, why)) != DRV_OK)
		return rc;
	if (p != end)
		return bad(why, "only digits, then \"~\" and ranges LO or LO-HI joined by \",\"");
	*out = c;
	return DRV_OK;
}

/* The highest range of h[0..n) below lim, clipped below pos; false if none. */
static bool highest_below(const struct drv_events_range *h, int n, int64_t pos, int64_t lim,
                          struct drv_events_range *out)
{
	bool found = false;

	for (int i = 0; i < n; i++) {
		struct drv_events_range r = h[i];

		if (r.hi >= pos)
			r.hi = pos - 1;
		if (r.lo < 1 || r.lo > r.hi || r.hi >= lim || (found && r.hi <= out->hi))
			continue;
		*out = r;
		found = true;
	}
	return found;
}

size_t drv_events_cursor_format(int64_t pos, const struct drv_events_range *h, int n, char *out,
                                size_t cap)
{
	struct drv_events_range pick[DRV_EVENTS_CURSOR_HOLES], r;
	int64_t ids = 0, lim = pos;
	int k = 0;
	size_t len;

	/* the highest first, within the bounds; a range over the ids left
	 * keeps its top */
	while (k < DRV_EVENTS_CURSOR_HOLES && ids < DRV_EVENTS_CURSOR_IDS &&
	       highest_below(h, n, pos, lim, &r)) {
		if (r.hi - r.lo >= DRV_EVENTS_CURSOR_IDS - ids)
			r.lo = r.hi - (DRV_EVENTS_CURSOR_IDS - ids) + 1;
		ids += r.hi - r.lo + 1;
		lim = r.lo;
		pick[k++] = r;
	}
	len = (size_t)snprintf(out, cap, "%lld", (long long)pos);
	for (int i = k - 1; i >= 0 && len < cap; i--) {
		const struct drv_events_range *p = &pick[i];
		char sep = i == k - 1 ? '~' : ',';

		if (p->lo == p->hi)
			len += (size_t)snprintf(out + len, cap - len, "%c%lld", sep,
			                        (long long)p->lo);
		else
			len += (size_t)snprintf(out + len, cap - len, "%c%lld-%lld", sep,
			                        (long long)p->lo, (long long)p->hi);
	}
	return len < cap ? len : cap - 1;
}
