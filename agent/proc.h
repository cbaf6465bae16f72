/*
 * proc.h: starting and reaping child processes for the agent (hooks, exec
 * health checks, exec-driver services).
 *
 * Every child runs in its own session (setsid), so a timeout or a stop reaches
 * the whole process group it may have forked. An exec failure in the child
 * (missing binary, bad chroot) is returned by proc_spawn as an error with the
 * child's errno, not discovered later as a mysterious exit code 127.
 */
#ifndef DRV_AGENT_PROC_H
#define DRV_AGENT_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "privs.h"
#include "stop_token.h"

#define PROC_TAIL_MAX     4096 /* bytes of output kept for reports */
#define PROC_ENV_MAX      256  /* variables per environment */
#define PROC_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct proc_spec {
	const char *path;       /* program to exec; NULL = argv[0] */
	char *const *argv;      /* path or argv[0]: a path, or a name looked up in PATH */
	char *const *envp;      /* NULL-terminated "K=V" strings */
	const char *cwd;        /* NULL = "/" (inside chroot_dir when set) */
	const char *chroot_dir; /* NULL = no chroot */
	int out_fd;             /* -1: capture stdout+stderr through a pipe; else dup'd on both */
	/* Credentials to drop to after chroot and chdir (NULL: the agent's own). */
	const struct privs *privs;
	/* Exec the file open at exec_fd (execveat) instead of path: the file
	 * the agent resolved, reached without the new user needing to search
	 * the directories above it. path is then only for messages. */
	bool by_fd;
	int exec_fd;
	/* proc_spawn: called in the parent with the child's pid before the
	 * child execs; the child waits for it. DRV_OK lets the child exec;
	 * anything else ends the child unexecuted and proc_spawn returns it.
	 * If the parent dies before answering, the child exits unexecuted
	 * too: nothing runs that on_fork did not see (the exec driver and
	 * hooks write their pid files here). NULL: the child execs at once. */
	int (*on_fork)(pid_t pid, void *arg);
	void *on_fork_arg;
};

struct proc_result {
	int exit_code;  /* exit status, or 128+signal when killed */
	int signo;      /* signal that ended it, 0 if it exited */
	bool timed_out; /* killed because the timeout passed */
	bool cancelled; /* killed because cancel was set */
	int64_t duration_ms;
	size_t tail_len;
	char tail[PROC_TAIL_MAX + 1]; /* last bytes of output, NUL-terminated */
};

/*
 * Fork and exec. On success *pid is the child (a session leader) and, when
 * spec->out_fd is -1, *capture_fd is the read end of its output pipe
 * (O_CLOEXEC, the caller closes it); else *capture_fd is -1.
 * DRV_ENOENT / DRV_EPERM / DRV_ESYS when exec failed; errno_out (may be NULL)
 * gets the child's errno.
 */
int proc_spawn(const struct proc_spec *spec, pid_t *pid, int *capture_fd, int *errno_out);

/*
 * Run to completion: spawn, collect output (the tail, and everything into
 * log_fd when >= 0), wait at most timeout_ms (0 = no limit), then SIGTERM the
 * group and SIGKILL it after grace_ms. cancel (may be NULL) is polled every
 * 100 ms and ends the run the same way. DRV_OK whenever the child ran, whatever
 * its exit status; *out is written only then.
 */
int proc_run(const struct proc_spec *spec, int64_t timeout_ms, int64_t grace_ms,
             const struct stop_token *cancel, int log_fd, struct proc_result *out, int *errno_out);

/* SIGTERM the process group of pid, wait up to grace_ms for pid to exit
 * (without reaping it when it is our child: the caller collects the status),
 * then SIGKILL the group. DRV_OK once gone. */
int proc_stop_group(pid_t pid, int64_t grace_ms, bool is_child);

/* Start time of pid in clock ticks since boot (/proc/PID/stat field 22):
 * with the pid it identifies a process across pid reuse. */
int proc_start_time(pid_t pid, uint64_t *out);

/* A "K=V" list under construction: later sets of a key replace earlier ones. */
struct proc_env {
	size_t n;
	char *vars[PROC_ENV_MAX + 1]; /* NULL-terminated, each malloc'd */
};

void proc_env_init(struct proc_env *env);
int proc_env_set(struct proc_env *env, const char *key, const char *value);
void proc_env_free(struct proc_env *env);

/* NULL-terminated malloc'd copy of n strings (for argv); free with proc_argv_free. */
int proc_argv_dup(char *const *src, size_t n, char ***out);
void proc_argv_free(char **argv);

#endif
