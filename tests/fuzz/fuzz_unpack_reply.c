/*
 * fuzz_unpack_reply.c: the unpack helper's result line as the agent reads
 * it (agent/unpack_helper.c), on arbitrary bytes: capped, never read past
 * the buffer, an error message always terminated.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "unpack_helper.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct unpack_stats st = {0};
	char err[128];
	char *buf = malloc(size ? size : 1);
	int rc;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	err[0] = '\0';
	rc = unpack_reply_parse(buf, size, &st, err, sizeof(err));
	if (rc != DRV_OK && strnlen(err, sizeof(err)) == sizeof(err))
		abort();
	free(buf);
	return 0;
}
