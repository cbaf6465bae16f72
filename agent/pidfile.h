/*
 * pidfile.h: "PID STARTTIME\n" files that identify a process across agent
 * restarts. The start time (clock ticks since boot, /proc/PID/stat) guards
 * against pid reuse: a pid file whose process is gone, or whose pid now
 * belongs to another process, reads as "not running".
 */
#ifndef DRV_AGENT_PIDFILE_H
#define DRV_AGENT_PIDFILE_H

#include <stdint.h>
#include <sys/types.h>

/* Write atomically the pid and its current start time. */
int pidfile_write(const char *path, pid_t pid);
/* DRV_OK with *pid when the recorded process is alive and is the same one;
 * DRV_ENOENT when there is no file or the process is gone (or was replaced). */
int pidfile_alive(const char *path, pid_t *pid);
/* Remove the file; missing is fine. */
void pidfile_remove(const char *path);

#endif
