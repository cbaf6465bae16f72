/* fetch_proto.c: frames between the fetch helper and the agent. */
#include "fetch_proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

void fetch_reader_init(struct fetch_reader *r)
{
	memset(r, 0, sizeof(*r));
	r->res.kind = FETCH_PENDING;
}

static int bad(struct fetch_reader *r, const char *why)
{
	r->res.kind = FETCH_BAD;
	snprintf(r->res.error, sizeof(r->res.error), "fetch helper protocol error: %s", why);
	return FETCH_BAD;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One decimal number of at most 20 digits, no sign, no leading zeros but 0. */
static int number(const char **p, const char *end, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;

	if (s == end || *s < '0' || *s > '9' || (*s == '0' && s + 1 < end && s[1] != ' '))
		return DRV_EDECODE;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		uint64_t d = (uint64_t)(*s - '0');
		if (d > max || v > (max - d) / 10)
			return DRV_EDECODE;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return DRV_OK;
}

int fetch_done_parse(const char *body, size_t len, struct fetch_done *out)
{
	const uint64_t max[8] = {UINT64_MAX, UINT64_MAX, UINT32_MAX, UINT32_MAX,
	                         UINT64_MAX, UINT32_MAX, UINT32_MAX, 1};
	const char *p = body, *end = body + len;
	uint64_t v[8];

	for (int i = 0; i < 8; i++) {
		if (i > 0 && (p == end || *p++ != ' '))
			return DRV_EDECODE;
		if (number(&p, end, max[i], &v[i]) != DRV_OK)
			return DRV_EDECODE;
	}
	if (p != end)
		return DRV_EDECODE;
	*out = (struct fetch_done){.bytes_fetched = v[0],
	                           .bytes_cached = v[1],
	                           .blobs_fetched = (uint32_t)v[2],
	                           .blobs_cached = (uint32_t)v[3],
	                           .fetch_ms = v[4],
	                           .uid = (uint32_t)v[5],
	                           .gid = (uint32_t)v[6],
	                           .no_new_privs = v[7] == 1};
	return DRV_OK;
}

static int frame(struct fetch_reader *r, const uint8_t *f, size_t len)
{
	size_t n;

	switch (f[0]) {
	case FETCH_MSG_DONE:
		if (fetch_done_parse((const char *)f + 1, len - 1, &r->res.done) != DRV_OK)
			return bad(r, "malformed DONE");
		r->res.kind = FETCH_DONE;
		return FETCH_DONE;
	case FETCH_MSG_ERROR:
		n = len - 1 < FETCH_ERROR_MAX ? len - 1 : FETCH_ERROR_MAX;
		for (size_t i = 0; i < n; i++) {
			char c = (char)f[1 + i];
			r->res.error[i] = c >= 0x20 && c < 0x7f ? c : '?';
		}
		r->res.error[n] = '\0';
		r->res.kind = FETCH_ERROR;
		return FETCH_ERROR;
	default: return bad(r, "unknown frame type");
	}
}

int fetch_reader_feed(struct fetch_reader *r, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (len == 0)
		return r->res.kind;
	if (r->res.kind != FETCH_PENDING)
		return bad(r, "data after the last frame");
	if (len > FETCH_STREAM_MAX - r->total)
		return bad(r, "stream too long");
	r->total += len;
	while (len > 0) {
		size_t need = r->have < 4 ? 4 : 4 + (size_t)be32(r->buf);
		size_t take = need - r->have < len ? need - r->have : len;
		memcpy(r->buf + r->have, p, take);
		r->have += take;
		p += take;
		len -= take;
		if (r->have == 4) {
			uint32_t l = be32(r->buf);
			if (l == 0 || l > FETCH_FRAME_MAX)
				return bad(r, "frame length out of range");
			continue;
		}
		if (r->have < 4 || r->have < need)
			continue;
		r->have = 0;
		if (frame(r, r->buf + 4, need - 4) == FETCH_BAD)
			return FETCH_BAD;
		if (len > 0)
			return bad(r, "data after the last frame");
	}
	return r->res.kind;
}

void fetch_reader_eof(struct fetch_reader *r)
{
	if (r->res.kind == FETCH_PENDING)
		bad(r, r->have > 0 ? "stream cut inside a frame" : "stream ended without a result");
}

static size_t put(uint8_t type, const char *body, size_t n, uint8_t *out, size_t size)
{
	if (n + 1 > FETCH_FRAME_MAX || size < n + 5)
		return 0;
	out[0] = (uint8_t)((n + 1) >> 24);
	out[1] = (uint8_t)((n + 1) >> 16);
	out[2] = (uint8_t)((n + 1) >> 8);
	out[3] = (uint8_t)(n + 1);
	out[4] = type;
	memcpy(out + 5, body, n);
	return n + 5;
}

size_t fetch_frame_done(const struct fetch_done *d, uint8_t *out, size_t size)
{
	char b[256];
	int n = snprintf(b, sizeof(b),
	                 "%" PRIu64 " %" PRIu64 " %" PRIu32 " %" PRIu32 " %" PRIu64 " %" PRIu32
	                 " %" PRIu32 " %d",
	                 d->bytes_fetched, d->bytes_cached, d->blobs_fetched, d->blobs_cached,
	                 d->fetch_ms, d->uid, d->gid, d->no_new_privs ? 1 : 0);

	return n > 0 && (size_t)n < sizeof(b) ? put(FETCH_MSG_DONE, b, (size_t)n, out, size) : 0;
}

size_t fetch_frame_error(const char *msg, uint8_t *out, size_t size)
{
	size_t n = strlen(msg);

	return put(FETCH_MSG_ERROR, msg, n < FETCH_ERROR_MAX ? n : FETCH_ERROR_MAX, out, size);
}
