/* fsim_proc.c: /proc/PID/{status,stat,fd,limits}. */
#include "fsim_proc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"

static int64_t status_kb(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return p != NULL ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static int read_text(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return DRV_ENOENT;
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	return DRV_OK;
}

/* utime and stime are fields 14 and 15; the command name may hold spaces. */
static double stat_cpu(const char *text)
{
	const char *p = strrchr(text, ')');
	unsigned long long ut = 0, st = 0;

	if (p == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int64_t count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int64_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static int64_t nofile_limit(const char *limits)
{
	const char *p = strstr(limits, "Max open files");

	if (p == NULL)
		return -1;
	p += strlen("Max open files");
	while (*p == ' ')
		p++;
	return strncmp(p, "unlimited", 9) == 0 ? -1 : strtoll(p, NULL, 10);
}

int fsim_proc_sample(pid_t pid, struct fsim_proc *out)
{
	char path[64], status[8192], stat[2048], limits[4096];
	struct fsim_proc p;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_text(path, status, sizeof(status)) != DRV_OK)
		return DRV_ENOENT;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_text(path, stat, sizeof(stat)) != DRV_OK)
		return DRV_ENOENT;
	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	if (read_text(path, limits, sizeof(limits)) != DRV_OK)
		return DRV_ENOENT;
	p.rss_kb = status_kb(status, "VmRSS:");
	p.hwm_kb = status_kb(status, "VmHWM:");
	p.anon_kb = status_kb(status, "RssAnon:");
	p.threads = status_kb(status, "Threads:");
	p.cpu_s = stat_cpu(stat);
	p.fds = count_fds(pid);
	p.nofile_soft = nofile_limit(limits);
	*out = p;
	return DRV_OK;
}
