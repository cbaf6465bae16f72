/*
 * fuzz_fetch_proto.c: what the unprivileged fetch helper can send the agent
 * over its pipe (agent/fetch_proto.c), on arbitrary bytes: fed at once and
 * in pieces whose sizes come from the input, the two must agree; a stream
 * that decodes is re-encoded and must decode to the same result.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fetch_reader *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	uint8_t f[FETCH_FRAME_MAX + 4];
	size_t n;

	if (a == NULL || b == NULL)
		goto out;
	fetch_reader_init(a);
	fetch_reader_init(b);
	fetch_reader_feed(a, data, size);
	fetch_reader_eof(a);
	for (size_t i = 0; i < size;) {
		size_t step = 1 + data[i] % 7;
		step = step < size - i ? step : size - i;
		fetch_reader_feed(b, data + i, step);
		i += step;
	}
	fetch_reader_eof(b);
	if (a->res.kind != b->res.kind)
		abort();
	if (a->res.kind == FETCH_DONE) {
		n = fetch_frame_done(&a->res.done, f, sizeof(f));
		fetch_reader_init(b);
		if (n == 0 || fetch_reader_feed(b, f, n) != FETCH_DONE ||
		    memcmp(&b->res.done, &a->res.done, sizeof(a->res.done)) != 0)
			abort();
	}
out:
	free(a);
	free(b);
	return 0;
}
