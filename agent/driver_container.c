/* driver_container.c: placeholder until the Docker API driver lands. */
#include <stdio.h>

#include "driver.h"
#include "err.h"

static int init(const struct driver_env *env, void **state)
{
	(void)env;
	*state = NULL;
	return DRV_OK;
}
static void fini(void *state)
{
	(void)state;
}
static int prepare(void *state, struct driver_instance *in, bool local_only, char **dir_out,
                   char *err, size_t size)
{
	(void)state;
	(void)in;
	(void)local_only;
	(void)dir_out;
	snprintf(err, size, "container driver not available yet");
	return DRV_EINVAL;
}
const struct driver_ops driver_container_ops = {.name = "container",
                                                .init = init,
                                                .fini = fini,
                                                .prepare = prepare};
