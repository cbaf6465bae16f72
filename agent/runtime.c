/*
 * runtime.c: release switching. (Service actions arrive in the next change;
 * this version reports them as not supported so the link can integrate.)
 */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

struct runtime {
	struct state *st;
};

int runtime_new(const struct runtime_config *cfg, struct state *st, struct runtime **out)
{
	struct runtime *rt = calloc(1, sizeof(*rt));

	(void)cfg;
	if (rt == NULL)
		return DRV_ENOMEM;
	rt->st = st;
	*out = rt;
	return DRV_OK;
}

void runtime_free(struct runtime *rt)
{
	free(rt);
}

#define UNSUPPORTED(fn)                                                                            \
	int fn(struct runtime *rt, const Drover__Instruction *ins, struct step_outcome *o)         \
	{                                                                                          \
		(void)rt;                                                                          \
		(void)ins;                                                                         \
		return step_fail(o, "%s: not supported by this agent build yet", #fn);             \
	}

UNSUPPORTED(runtime_prestage)
UNSUPPORTED(runtime_start)
UNSUPPORTED(runtime_stop)
UNSUPPORTED(runtime_activate_previous)
UNSUPPORTED(runtime_health_check)
UNSUPPORTED(runtime_finalize)

int runtime_releases(struct runtime *rt, Drover__Release ***out, size_t *n)
{
	(void)rt;
	*out = NULL;
	*n = 0;
	return DRV_OK;
}
