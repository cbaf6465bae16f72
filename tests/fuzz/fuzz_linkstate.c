/*
 * fuzz_linkstate.c: the agent's link state decoder (agent/linkstate.c) on
 * arbitrary bytes; whatever decodes is looked up and extended.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "err.h"
#include "linkstate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct linkstate *st = malloc(sizeof(*st));

	if (st == NULL)
		return 0;
	if (linkstate_parse((const char *)data, size, st) == DRV_OK) {
		linkstate_find(st, "step");
		linkstate_add(st, st->applied_seq + 1, "step", "dep");
	}
	free(st);
	return 0;
}
