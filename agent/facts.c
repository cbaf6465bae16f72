/* facts.c: host facts from uname, sysconf and /proc. */
#include "facts.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static void read_boot_id(char *out, size_t cap)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	if (f == NULL)
		return;
	if (fgets(out, (int)cap, f) != NULL)
		out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

void facts_collect(struct host_facts *out)
{
	struct utsname u;
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(out, 0, sizeof(*out));
	drover__host_facts__init(&out->msg);
	gethostname(out->hostname, sizeof(out->hostname) - 1);
	if (uname(&u) == 0) {
		snprintf(out->os, sizeof(out->os), "%s %s", u.sysname, u.release);
		snprintf(out->arch, sizeof(out->arch), "%s", u.machine);
	}
	read_boot_id(out->boot_id, sizeof(out->boot_id));
	out->msg.hostname = out->hostname;
	out->msg.os = out->os;
	out->msg.arch = out->arch;
	out->msg.boot_id = out->boot_id;
	out->msg.cpus = cpus > 0 ? (uint32_t)cpus : 0;
	out->msg.mem_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}
