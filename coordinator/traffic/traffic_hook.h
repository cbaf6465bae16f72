/*
 * traffic_hook.h: the "command" traffic kind: an operator's command does the
 * switching (argv conventions in traffic.h).
 */
#ifndef DRV_TRAFFIC_HOOK_H
#define DRV_TRAFFIC_HOOK_H

#include "traffic.h"

extern const struct drv_traffic_ops drv_traffic_hook_ops;

#endif
