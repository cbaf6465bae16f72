/* wire_names.c: names of the wire's enums (wire_names.h). */
#include "wire_names.h"

static const char *const step_results[] = {
        [DROVER__STEP_RESULT__STEP_RESULT_UNSPECIFIED] = "unspecified",
        [DROVER__STEP_RESULT__STEP_ACCEPTED] = "accepted",
        [DROVER__STEP_RESULT__STEP_RUNNING] = "running",
        [DROVER__STEP_RESULT__STEP_SUCCEEDED] = "succeeded",
        [DROVER__STEP_RESULT__STEP_FAILED] = "failed",
        [DROVER__STEP_RESULT__STEP_HEALTH] = "health",
        [DROVER__STEP_RESULT__STEP_STATUS] = "status",
};

static const char *const release_states[] = {
        [DROVER__RELEASE_STATE__RELEASE_UNSPECIFIED] = "unspecified",
        [DROVER__RELEASE_STATE__RELEASE_STAGED] = "staged",
        [DROVER__RELEASE_STATE__RELEASE_RUNNING] = "running",
        [DROVER__RELEASE_STATE__RELEASE_STOPPED] = "stopped",
        [DROVER__RELEASE_STATE__RELEASE_FAILED] = "failed",
};

#define N_OF(t) (sizeof(t) / sizeof((t)[0]))

const char *drv_step_result_name(Drover__StepResult r)
{
	return (unsigned)r < N_OF(step_results) ? step_results[r] : "unspecified";
}

const char *drv_release_state_name(Drover__ReleaseState st)
{
	return (unsigned)st < N_OF(release_states) ? release_states[st] : "unspecified";
}
