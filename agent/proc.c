/*
 * proc.c: fork/exec with a session per child, output capture with a bounded
 * tail, timeouts with SIGTERM then SIGKILL, and process identity via
 * /proc start times.
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "log.h"

static int errno_to_drv(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR: return DRV_ENOENT;
	case EACCES:
	case EPERM: return DRV_EPERM;
	case ENOMEM: return DRV_ENOMEM;
	default: return DRV_ESYS;
	}
}

static const char *env_get(char *const *envp, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
		if (strncmp(envp[i], key, kl) == 0 && envp[i][kl] == '=')
			return envp[i] + kl + 1;
	}
	return NULL;
}

/* Wait for the parent's go (one byte on gofd). EOF means it refused or
 * died, and the child must not exec. A child forked beside this one by
 * another thread may hold the parent's end open until it execs, so the
 * parent's death is also seen by the child's reparenting. Async-signal-safe. */
static bool child_go(int gofd, pid_t parent)
{
	struct pollfd pfd = {.fd = gofd, .events = POLLIN};
	char b;
	ssize_t n;

	for (;;) {
		if (getppid() != parent)
			return false;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		do
			n = read(gofd, &b, 1);
		while (n < 0 && errno == EINTR);
		return n == 1;
	}
}

/* After fork: only async-signal-safe calls, and report failure via errpipe.
 * gofd >= 0: wait for the parent's go before anything else. */
static void child(const struct proc_spec *spec, const char *path, int outfd, int errfd, int gofd,
                  pid_t parent)
{
	int devnull, e;
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	setsid();
	if (gofd >= 0 && !child_go(gofd, parent)) {
		errno = ECANCELED;
		goto fail;
	}
	devnull = open("/dev/null", O_RDONLY);
	if (devnull >= 0 && devnull != 0) {
		dup2(devnull, 0);
		close(devnull);
	}
	if (dup2(outfd, 1) < 0 || dup2(outfd, 2) < 0)
		goto fail;
	if (spec->chroot_dir != NULL && (chdir(spec->chroot_dir) < 0 || chroot(".") < 0))
		goto fail;
	if (chdir(spec->cwd ? spec->cwd : "/") < 0)
		goto fail;
	if (spec->privs != NULL && (errno = privs_apply(spec->privs)) != 0)
		goto fail;
	if (spec->by_fd)
		syscall(SYS_execveat, spec->exec_fd, "", spec->argv, spec->envp, AT_EMPTY_PATH);
	else
		execve(path, spec->argv, spec->envp);
fail:
	e = errno;
	if (write(errfd, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

/* PATH lookup in the parent: execvpe would search the agent's own PATH, and
 * setenv is not safe between fork and exec in a threaded program. */
static int resolve(const struct proc_spec *spec, char *buf, size_t size)
{
	const char *name = spec->path ? spec->path : spec->argv[0];
	const char *p = env_get(spec->envp, "PATH");
	char *dirs, *save = NULL, *d;

	if (strchr(name, '/') != NULL || spec->chroot_dir != NULL) {
		if (snprintf(buf, size, "%s", name) >= (int)size)
			return DRV_ETOOBIG;
		return DRV_OK;
	}
	dirs = strdup(p ? p : PROC_DEFAULT_PATH);
	if (dirs == NULL)
		return DRV_ENOMEM;
	for (d = strtok_r(dirs, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
		if (snprintf(buf, size, "%s/%s", d, name) < (int)size && access(buf, X_OK) == 0) {
			free(dirs);
			return DRV_OK;
		}
	}
	free(dirs);
	errno = ENOENT;
	return DRV_ENOENT;
}

/* The parent's half of the go handshake: ask on_fork, then let the child
 * exec (a byte) or not (close). MSG_NOSIGNAL: a child that died already
 * must not raise SIGPIPE in the agent. */
static int parent_go(const struct proc_spec *spec, pid_t pid, int gofd)
{
	int rc = spec->on_fork(pid, spec->on_fork_arg);

	if (rc == DRV_OK && send(gofd, "g", 1, MSG_NOSIGNAL) != 1)
		rc = DRV_ESYS;
	close(gofd);
	return rc;
}

int proc_spawn(const struct proc_spec *spec, pid_t *pid_out, int *capture_fd, int *errno_out)
{
	int errp[2], outp[2] = {-1, -1}, gop[2] = {-1, -1}, outfd, child_errno = 0, rc;
	int go_rc = DRV_OK;
	char path[4096];
	ssize_t n;
	pid_t pid, parent;

	if (spec->argv == NULL || spec->argv[0] == NULL)
		return DRV_EINVAL;
	rc = resolve(spec, path, sizeof(path));
	if (rc != DRV_OK) {
		if (errno_out != NULL)
			*errno_out = ENOENT;
		return rc;
	}
	if (pipe2(errp, O_CLOEXEC) < 0)
		return DRV_ESYS;
	if (spec->out_fd < 0 && pipe2(outp, O_CLOEXEC) < 0) {
		close(errp[0]);
		close(errp[1]);
		return DRV_ESYS;
	}
	if (spec->on_fork != NULL && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, gop) < 0) {
		close(errp[0]);
		close(errp[1]);
		if (outp[0] >= 0) {
			close(outp[0]);
			close(outp[1]);
		}
		return DRV_ESYS;
	}
	outfd = spec->out_fd >= 0 ? spec->out_fd : outp[1];
	parent = getpid();
	pid = fork();
	if (pid == 0) {
		if (gop[0] >= 0)
			close(gop[0]); /* only the parent may hold the go end */
		child(spec, path, outfd, errp[1], gop[1], parent);
	}
	close(errp[1]);
	if (outp[1] >= 0)
		close(outp[1]);
	if (gop[1] >= 0)
		close(gop[1]);
	if (pid < 0) {
		close(errp[0]);
		if (outp[0] >= 0)
			close(outp[0]);
		if (gop[0] >= 0)
			close(gop[0]);
		return DRV_ESYS;
	}
	if (gop[0] >= 0)
		go_rc = parent_go(spec, pid, gop[0]);
	do
		n = read(errp[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	close(errp[0]);
	if (n == (ssize_t)sizeof(child_errno) || go_rc != DRV_OK) {
		waitpid(pid, NULL, 0);
		if (outp[0] >= 0)
			close(outp[0]);
		if (go_rc != DRV_OK) {
			if (errno_out != NULL)
				*errno_out = ECANCELED;
			return go_rc;
		}
		if (errno_out != NULL)
			*errno_out = child_errno;
		return errno_to_drv(child_errno);
	}
	*pid_out = pid;
	*capture_fd = outp[0];
	return DRV_OK;
}

static void tail_append(struct proc_result *r, const char *buf, size_t n)
{
	if (n >= PROC_TAIL_MAX) {
		memcpy(r->tail, buf + n - PROC_TAIL_MAX, PROC_TAIL_MAX);
		r->tail_len = PROC_TAIL_MAX;
	} else {
		size_t keep = r->tail_len + n > PROC_TAIL_MAX ? PROC_TAIL_MAX - n : r->tail_len;
		memmove(r->tail, r->tail + r->tail_len - keep, keep);
		memcpy(r->tail + keep, buf, n);
		r->tail_len = keep + n;
	}
	r->tail[r->tail_len] = '\0';
}

static void status_to_result(int status, struct proc_result *r)
{
	if (WIFEXITED(status)) {
		r->exit_code = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		r->signo = WTERMSIG(status);
		r->exit_code = 128 + r->signo;
	}
}

/* Read what is available; false at EOF. */
static bool drain(int fd, int log_fd, struct proc_result *r)
{
	char buf[8192];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	tail_append(r, buf, (size_t)n);
	if (log_fd >= 0 && write(log_fd, buf, (size_t)n) < 0)
		drv_debug("proc", "cannot write output log", "errno=%d", errno);
	return true;
}

int proc_run(const struct proc_spec *spec, int64_t timeout_ms, int64_t grace_ms,
             const struct stop_token *cancel, int log_fd, struct proc_result *out, int *errno_out)
{
	struct proc_spec s = *spec;
	struct proc_result *r;
	struct drv_deadline dl =
	        timeout_ms > 0 ? drv_deadline_in(timeout_ms) : drv_deadline_never();
	int64_t t0 = drv_mono_ms();
	int fd, status = 0, rc;
	bool open_out = true, exited = false;
	pid_t pid;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return DRV_ENOMEM;
	s.out_fd = -1;
	rc = proc_spawn(&s, &pid, &fd, errno_out);
	if (rc != DRV_OK) {
		free(r);
		return rc;
	}
	while (!exited) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t now = drv_mono_ms();

		if (stop_token_stopped(cancel)) {
			r->cancelled = true;
			break;
		}
		if (drv_deadline_passed(dl, now)) {
			r->timed_out = true;
			break;
		}
		if (open_out) {
			int wait = (int)drv_deadline_left(dl, now, 100);
			if (poll(&pfd, 1, wait) > 0)
				open_out = drain(fd, log_fd, r);
		} else {
			poll(NULL, 0, 20);
		}
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			exited = true;
	}
	if (!exited) {
		proc_stop_group(pid, grace_ms, true);
		waitpid(pid, &status, 0);
	}
	/* Collect what the group wrote before the pipe closed (bounded). */
	for (int i = 0; open_out && i < 64; i++) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, 50) <= 0)
			break;
		open_out = drain(fd, log_fd, r);
	}
	close(fd);
	status_to_result(status, r);
	r->duration_ms = drv_mono_ms() - t0;
	memcpy(out, r, sizeof(*r));
	free(r);
	return DRV_OK;
}

/* A child that exited is a zombie until reaped: look without reaping (the
 * caller collects the status). A non-child counts as gone once a zombie. */
static bool gone(pid_t pid, bool is_child)
{
	uint64_t st;

	if (is_child) {
		siginfo_t si = {0};
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
			return errno == ECHILD;
		return si.si_pid == pid;
	}
	return proc_start_time(pid, &st) != DRV_OK;
}

int proc_stop_group(pid_t pid, int64_t grace_ms, bool is_child)
{
	struct drv_deadline dl = drv_deadline_in(grace_ms);

	if (pid <= 1)
		return DRV_EINVAL;
	if (kill(-pid, SIGTERM) < 0)
		kill(pid, SIGTERM);
	while (!drv_deadline_passed(dl, drv_mono_ms())) {
		if (gone(pid, is_child))
			return DRV_OK;
		poll(NULL, 0, 20);
	}
	drv_warn("proc", "process ignored SIGTERM, sending SIGKILL", "pid=%d grace_ms=%lld",
	         (int)pid, (long long)grace_ms);
	if (kill(-pid, SIGKILL) < 0)
		kill(pid, SIGKILL);
	for (int i = 0; i < 250; i++) {
		if (gone(pid, is_child))
			return DRV_OK;
		poll(NULL, 0, 20);
	}
	return DRV_ETIMEDOUT;
}

int proc_start_time(pid_t pid, uint64_t *out)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return DRV_ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return DRV_ENOENT;
	buf[n] = '\0';
	/* The command name may hold spaces and ')': skip to the last ')'. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return DRV_EDECODE;
	/* Fields after ')' start at 3 (state); starttime is field 22. */
	p++;
	for (int field = 3; field <= 22; field++) {
		char *end;
		while (*p == ' ')
			p++;
		if (field == 3 && *p == 'Z')
			return DRV_ENOENT; /* a zombie is not running */
		if (field == 22) {
			st = strtoull(p, &end, 10);
			if (end == p)
				return DRV_EDECODE;
			break;
		}
		p = strchr(p, ' ');
		if (p == NULL)
			return DRV_EDECODE;
	}
	*out = st;
	return DRV_OK;
}

void proc_env_init(struct proc_env *env)
{
	memset(env, 0, sizeof(*env));
}

int proc_env_set(struct proc_env *env, const char *key, const char *value)
{
	size_t kl = strlen(key);
	char *kv;

	if (kl == 0 || strchr(key, '=') != NULL)
		return DRV_EINVAL;
	if (asprintf(&kv, "%s=%s", key, value) < 0)
		return DRV_ENOMEM;
	for (size_t i = 0; i < env->n; i++) {
		if (strncmp(env->vars[i], key, kl) == 0 && env->vars[i][kl] == '=') {
			free(env->vars[i]);
			env->vars[i] = kv;
			return DRV_OK;
		}
	}
	if (env->n >= PROC_ENV_MAX) {
		free(kv);
		return DRV_ETOOBIG;
	}
	env->vars[env->n++] = kv;
	env->vars[env->n] = NULL;
	return DRV_OK;
}

void proc_env_free(struct proc_env *env)
{
	for (size_t i = 0; i < env->n; i++)
		free(env->vars[i]);
	proc_env_init(env);
}

int proc_argv_dup(char *const *src, size_t n, char ***out)
{
	char **a = calloc(n + 1, sizeof(*a));

	if (a == NULL)
		return DRV_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		a[i] = strdup(src[i]);
		if (a[i] == NULL) {
			proc_argv_free(a);
			return DRV_ENOMEM;
		}
	}
	*out = a;
	return DRV_OK;
}

void proc_argv_free(char **argv)
{
	for (size_t i = 0; argv != NULL && argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}
