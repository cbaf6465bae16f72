/*
 * fsim_proc.h: what /proc says about a process: resident memory, CPU time,
 * threads, open files and the open-files limit. The benchmarks sample
 * droverd, drover-agent and themselves with it.
 */
#ifndef DRV_FSIM_PROC_H
#define DRV_FSIM_PROC_H

#include <stdint.h>
#include <sys/types.h>

struct fsim_proc {
	int64_t rss_kb;  /* VmRSS */
	int64_t hwm_kb;  /* VmHWM: peak RSS */
	int64_t anon_kb; /* RssAnon: the private heap and stacks */
	double cpu_s;    /* utime + stime */
	int64_t threads;
	int64_t fds;         /* entries in /proc/PID/fd */
	int64_t nofile_soft; /* RLIMIT_NOFILE of that process (-1: unlimited) */
};

/* DRV_OK, or DRV_ENOENT if the process is gone. */
int fsim_proc_sample(pid_t pid, struct fsim_proc *out);

#endif
