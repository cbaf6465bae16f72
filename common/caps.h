/*
 * caps.h: the names of Linux capabilities (linux/capability.h order), the
 * one table both the plan checker and the agent use.
 */
#ifndef DRV_CAPS_H
#define DRV_CAPS_H

/* The number of "CAP_NET_RAW" or "net_raw" (any case); -1 if unknown. */
int drv_cap_number(const char *name);
/* "CAP_CHOWN" for 0, ...; NULL when n is not a known capability. */
const char *drv_cap_name(int n);

#endif
