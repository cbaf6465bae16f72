/*
 * run_step.h: `drover-agent run-step FILE`, the debug entry that runs one
 * instruction described in JSON through the executor, without a coordinator.
 * See docs/agent.md for the JSON format.
 */
#ifndef DRV_AGENT_RUN_STEP_H
#define DRV_AGENT_RUN_STEP_H

#include <stddef.h>

#include "drover.pb-c.h"

/* argv[0] is "run-step". Exit status: 0 step succeeded, 1 failed, 2 usage. */
int run_step_main(int argc, char **argv);

/* Parse the JSON description (a buffer of len bytes; `where` names it in
 * errors, written to err). On success *out is owned by the caller, freed
 * with drover__instruction__free_unpacked(*out, NULL). */
int run_step_parse(const char *json, size_t len, const char *where, Drover__Instruction **out,
                   char *err, size_t err_size);

#endif
