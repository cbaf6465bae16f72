/*
 * facts.h: what the agent tells the coordinator about its host in Hello
 * (hostname, OS, architecture, CPUs, memory, boot id).
 */
#ifndef DRV_FACTS_H
#define DRV_FACTS_H

#include "drover.pb-c.h"

struct host_facts {
	Drover__HostFacts msg; /* points into the buffers below */
	char hostname[256], os[520], arch[72], boot_id[64];
};

/* Never fails: what cannot be read stays empty. */
void facts_collect(struct host_facts *out);

#endif
