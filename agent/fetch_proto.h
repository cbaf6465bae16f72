/*
 * fetch_proto.h: what the fetch helper (`drover-agent fetch`, fetch_helper.h)
 * tells the agent over its pipe. The helper runs without root and talks to
 * registries, so the agent reads this as untrusted input: every frame and
 * the whole stream are size-capped, and only the fields below are accepted.
 *
 * A frame: 4 bytes big-endian length L (1..FETCH_FRAME_MAX), then L bytes:
 * one type byte and its body.
 *
 *   FETCH_MSG_DONE   "DONE" body: eight decimal numbers separated by single
 *                    spaces: bytes_fetched bytes_cached blobs_fetched
 *                    blobs_cached fetch_ms uid gid no_new_privs
 *                    (the last three: the credentials the helper ran with)
 *   FETCH_MSG_ERROR  body: the error, printable ASCII (others become '?')
 *
 * Exactly one DONE or ERROR ends a stream; anything after it, an unknown
 * type, or a stream over FETCH_STREAM_MAX is a protocol error. Pure.
 */
#ifndef DRV_AGENT_FETCH_PROTO_H
#define DRV_AGENT_FETCH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FETCH_FRAME_MAX  1024u
#define FETCH_STREAM_MAX (4u * FETCH_FRAME_MAX)
#define FETCH_ERROR_MAX  (FETCH_FRAME_MAX - 1)

enum fetch_msg { FETCH_MSG_DONE = 'D', FETCH_MSG_ERROR = 'E' };

struct fetch_done {
	uint64_t bytes_fetched, bytes_cached;
	uint32_t blobs_fetched, blobs_cached;
	uint64_t fetch_ms;
	uint32_t uid, gid;
	bool no_new_privs;
};

/* The end of a stream, as the agent read it. */
struct fetch_result {
	enum { FETCH_PENDING, FETCH_DONE, FETCH_ERROR, FETCH_BAD } kind;
	struct fetch_done done;          /* FETCH_DONE */
	char error[FETCH_ERROR_MAX + 1]; /* FETCH_ERROR, or what was wrong (FETCH_BAD) */
};

struct fetch_reader {
	uint8_t buf[FETCH_FRAME_MAX + 4];
	size_t have;  /* bytes of the current frame, header included */
	size_t total; /* bytes of the stream */
	struct fetch_result res;
};

void fetch_reader_init(struct fetch_reader *r);
/* Feed bytes as they arrive. Returns r->res.kind: FETCH_PENDING while more
 * is expected; once DONE, ERROR or BAD, further input makes it BAD. */
int fetch_reader_feed(struct fetch_reader *r, const void *data, size_t len);
/* The stream ended (EOF): a stream without its last frame becomes BAD. */
void fetch_reader_eof(struct fetch_reader *r);

/* Encode a frame into out (at least FETCH_FRAME_MAX + 4 bytes); its length,
 * or 0 when the body does not fit. */
size_t fetch_frame_done(const struct fetch_done *d, uint8_t *out, size_t size);
size_t fetch_frame_error(const char *msg, uint8_t *out, size_t size);

/* The DONE body parser behind the reader (fuzzed through it). */
int fetch_done_parse(const char *body, size_t len, struct fetch_done *out);

#endif
