/*
 * fuzz_events_cursor.c: Last-Event-ID as GET /v1/events reads it
 * (coordinator/model/events_cursor.c), on arbitrary bytes. Whatever parses
 * keeps the bounds (ranges ascending, disjoint, below the position, at
 * most DRV_EVENTS_CURSOR_HOLES of them over DRV_EVENTS_CURSOR_IDS ids),
 * and what a stream writes of it parses back to the same cursor. The
 * writer also gets the bytes as ranges: its text always parses.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "events_cursor.h"

static void check(const struct drv_events_cursor *c)
{
	int64_t ids = 0, floor = 0;

	if (c->pos < 0 || c->n_holes < 0 || c->n_holes > DRV_EVENTS_CURSOR_HOLES)
		abort();
	for (int i = 0; i < c->n_holes; i++) {
		const struct drv_events_range *r = &c->holes[i];

		if (r->lo <= floor || r->lo > r->hi || r->hi >= c->pos)
			abort();
		ids += r->hi - r->lo + 1;
		floor = r->hi;
	}
	if (ids > DRV_EVENTS_CURSOR_IDS)
		abort();
}

/* The writer on ranges made of the bytes: its text parses. */
static void write_any(const uint8_t *data, size_t size)
{
	struct drv_events_range h[2 * DRV_EVENTS_CURSOR_HOLES];
	struct drv_events_cursor c;
	char out[DRV_EVENTS_CURSOR_LEN + 1];
	int64_t pos;
	int n = 0;

	if (size < sizeof(pos))
		return;
	memcpy(&pos, data, sizeof(pos));
	pos = pos < 0 ? -(pos + 1) : pos;
	for (size_t off = sizeof(pos);
	     off + 2 * sizeof(int64_t) <= size && n < 2 * DRV_EVENTS_CURSOR_HOLES;
	     off += 2 * sizeof(int64_t)) {
		memcpy(&h[n].lo, data + off, sizeof(int64_t));
		memcpy(&h[n].hi, data + off + sizeof(int64_t), sizeof(int64_t));
		n++;
	}
	drv_events_cursor_format(pos, h, n, out, sizeof(out));
	if (drv_events_cursor_parse(out, strlen(out), &c, NULL) != DRV_OK || c.pos != pos)
		abort();
	check(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct drv_events_cursor c, again;
	char out[DRV_EVENTS_CURSOR_LEN + 1];
	const char *why = NULL;
	int rc = drv_events_cursor_parse((const char *)data, size, &c, &why);

	if (rc == DRV_OK) {
		check(&c);
		drv_events_cursor_format(c.pos, c.holes, c.n_holes, out, sizeof(out));
		if (drv_events_cursor_parse(out, strlen(out), &again, NULL) != DRV_OK ||
		    again.pos != c.pos || again.n_holes != c.n_holes ||
		    memcmp(again.holes, c.holes, (size_t)c.n_holes * sizeof(c.holes[0])) != 0)
			abort();
	} else if (why == NULL || (rc != DRV_EINVAL && rc != DRV_ETOOBIG)) {
		abort();
	}
	write_any(data, size);
	return 0;
}
