/* pidfile.c: pid files with start times. */
#include "pidfile.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "atomicfile.h"
#include "err.h"
#include "proc.h"

int pidfile_write(const char *path, pid_t pid)
{
	uint64_t st = 0;
	char buf[64];
	int n, rc = proc_start_time(pid, &st);

	if (rc != DRV_OK)
		return rc;
	n = snprintf(buf, sizeof(buf), "%d %" PRIu64 "\n", (int)pid, st);
	return drv_write_atomic(path, buf, (size_t)n, 0640);
}

int pidfile_alive(const char *path, pid_t *pid)
{
	unsigned long long want = 0;
	uint64_t now = 0;
	char *buf = NULL;
	size_t len;
	int p = 0, rc = drv_read_file(path, 128, &buf, &len);

	if (rc != DRV_OK)
		return DRV_ENOENT;
	if (sscanf(buf, "%d %llu", &p, &want) != 2 || p <= 1) {
		free(buf);
		return DRV_ENOENT;
	}
	free(buf);
	if (proc_start_time((pid_t)p, &now) != DRV_OK || now != want)
		return DRV_ENOENT;
	*pid = (pid_t)p;
	return DRV_OK;
}

void pidfile_remove(const char *path)
{
	unlink(path);
}
