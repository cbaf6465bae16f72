/*
 * fuzz_health_http.c: what a service answers an HTTP health check
 * (agent/health_http.c), on arbitrary bytes: the status line parse and the
 * completeness check must stay inside the buffer and agree (a complete
 * answer parses; its body starts within it).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "err.h"
#include "health.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned st = 0;
	size_t body = 0;
	char *buf;

	if (size > HTTP_ANSWER_MAX)
		return 0;
	buf = malloc(size ? size : 1); /* not terminated: the parser must not need it */
	if (buf == NULL)
		return 0;
	for (size_t i = 0; i < size; i++)
		buf[i] = (char)data[i];
	if (health_http_parse(buf, size, &st, &body) == DRV_OK &&
	    (st < 100 || st > 999 || body > size))
		abort();
	if (health_http_complete(buf, size) && health_http_parse(buf, size, &st, &body) != DRV_OK)
		abort();
	free(buf);
	return 0;
}
