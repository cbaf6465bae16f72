/*
 * fuzz_linkstate.c: the agent's link state decoder (agent/linkstate.c) on
 * arbitrary bytes, old files with steps included; whatever decodes must
 * hold only bounded, terminated strings and known results (the link moves
 * such steps into agent.db). A decoded HA epoch is the floor of the
 * fencing rule: nothing below it may pass linkstate_epoch_seen.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "linkstate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct linkstate *st = malloc(sizeof(*st));

	if (st == NULL)
		return 0;
	if (linkstate_parse((const char *)data, size, st) == DRV_OK) {
		if (st->n_steps > LINKSTATE_STEPS_MAX)
			abort();
		for (size_t i = 0; i < st->n_steps; i++) {
			const struct linkstate_step *s = &st->steps[i];

			if (s->step_id[0] == '\0' ||
			    strnlen(s->step_id, sizeof(s->step_id)) == sizeof(s->step_id) ||
			    strnlen(s->message, sizeof(s->message)) == sizeof(s->message) ||
			    (unsigned)s->result > DROVER__STEP_RESULT__STEP_STATUS)
				abort();
		}
		if (st->epoch > 0 && linkstate_epoch_seen(st, st->epoch - 1) != DRV_ESTALE)
			abort();
	}
	free(st);
	return 0;
}
