/*
 * wire_names.h: the names of the wire's enums (proto/drover.proto) as the
 * coordinator's API and the agent's tools print them. One table each.
 */
#ifndef DRV_WIRE_NAMES_H
#define DRV_WIRE_NAMES_H

#include "drover.pb-c.h"

/* "accepted", "running", "succeeded", ...; "unspecified" for any other value. */
const char *drv_step_result_name(Drover__StepResult r);
/* "staged", "running", "stopped", "failed"; "unspecified" for any other value. */
const char *drv_release_state_name(Drover__ReleaseState st);

#endif
