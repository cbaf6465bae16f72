/* driver.c: the driver registry. */
#include "driver.h"

#include <stdio.h>

static const struct driver_ops *const drivers[DRIVER_SLOTS] = {
        [DROVER__DRIVER__DRIVER_UNSPECIFIED] = &driver_exec_ops,
        [DROVER__DRIVER__DRIVER_EXEC] = &driver_exec_ops,
        [DROVER__DRIVER__DRIVER_CONTAINER] = &driver_container_ops,
        [DROVER__DRIVER__DRIVER_SYSTEMD] = &driver_systemd_ops,
};

const struct driver_ops *driver_find(Drover__Driver d)
{
	if ((int)d < 0 || (size_t)d >= DRIVER_SLOTS)
		return NULL;
	return drivers[d];
}

void driver_instance_name(struct driver_instance *in)
{
	if (in->slot != NULL && in->slot[0] != '\0')
		snprintf(in->name, sizeof(in->name), "%s@%s", in->service, in->slot);
	else
		snprintf(in->name, sizeof(in->name), "%s", in->service);
}
