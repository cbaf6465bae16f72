/*
 * driver_exec.c: the exec driver. The agent runs the service's command from
 * the unpacked release (chroot optional) and supervises it: restarts after a
 * crash with a growing delay (crash-loop throttling), logs to a size-capped
 * file rotated by copy-and-truncate (so a re-adopted process keeps writing),
 * pid files with /proc start times so a restarted agent re-adopts what is
 * still running, and stop = SIGTERM to the group, SIGKILL after the grace.
 *
 * A service runs as its plan's user (default drover-svc) with the
 * capabilities it lists and no_new_privs (privs.h). Its release directory
 * is 0750 root:<its group>, the instruction's files are its own (0640 by
 * default), and its command is resolved inside the release as if the
 * release were "/" (".." refused, absolute symlinks stay inside).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomicfile.h"
#include "clock.h"
#include "driver.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "pidfile.h"
#include "privs.h"
#include "proc.h"
#include "relprep.h"

#define LOG_MAX_DEFAULT  (10ul << 20)
#define LOG_KEEP_DEFAULT 3
#define QUICK_EXIT_MS    10000 /* an exit sooner than this after a start is a crash */
#define CRASHLOOP_AFTER  3     /* quick exits in a row */
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS   30000
#define GRACE_DEFAULT_MS 10000

struct sup {
	struct sup *next;
	char name[DRIVER_INSTANCE_MAX];
	char *service, *slot, *release_dir;
	Drover__ServiceSpec *spec; /* owned copy */
	pid_t pid;                 /* 0 when not running */
	uint64_t start_ticks;      /* its /proc start time (identity across pid reuse) */
	bool is_child, want, crashloop;
	int64_t started_ms, restart_at_ms;
	unsigned quick_exits, restarts;
	int last_exit;
};

#define NOTICES_MAX 16

/* Notices are collected under the lock and delivered after it is released:
 * the receiver asks the driver for status, which takes the lock. */
struct notice {
	char service[80], slot[80], msg[300];
};

struct exec_state {
	struct driver_env env;
	unsigned long log_max;
	unsigned log_keep;
	pthread_mutex_t lock;
	struct sup *list;
	struct notice notices[NOTICES_MAX];
	size_t n_notices;
};

/* Locked. */
static void queue_notice(struct exec_state *x, const struct sup *s, const char *msg)
{
	struct notice *n;

	if (x->n_notices >= NOTICES_MAX)
		return;
	n = &x->notices[x->n_notices++];
	snprintf(n->service, sizeof(n->service), "%s", s->service);
	snprintf(n->slot, sizeof(n->slot), "%s", s->slot);
	snprintf(n->msg, sizeof(n->msg), "%s", msg);
}

/* Unlocked: deliver what was queued. */
static void flush_notices(struct exec_state *x)
{
	struct notice batch[NOTICES_MAX];
	size_t n;

	pthread_mutex_lock(&x->lock);
	n = x->n_notices;
	memcpy(batch, x->notices, n * sizeof(batch[0]));
	x->n_notices = 0;
	pthread_mutex_unlock(&x->lock);
	for (size_t i = 0; i < n && x->env.notice != NULL; i++)
		x->env.notice(batch[i].service, batch[i].slot, batch[i].msg, x->env.notice_arg);
}

/* --- bookkeeping --- */

static struct sup *find(struct exec_state *x, const char *name)
{
	for (struct sup *s = x->list; s != NULL; s = s->next)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

static Drover__ServiceSpec *copy_spec(const Drover__ServiceSpec *spec)
{
	size_t len = drover__service_spec__get_packed_size(spec);
	uint8_t *buf = malloc(len ? len : 1);
	Drover__ServiceSpec *c;

	if (buf == NULL)
		return NULL;
	drover__service_spec__pack(spec, buf);
	c = drover__service_spec__unpack(NULL, len, buf);
	free(buf);
	return c;
}

static void sup_free(struct sup *s)
{
	if (s == NULL)
		return;
	free(s->service);
	free(s->slot);
	free(s->release_dir);
	if (s->spec != NULL)
		drover__service_spec__free_unpacked(s->spec, NULL);
	free(s);
}

/* Find or create the record for in, refreshing its spec and release. */
static struct sup *upsert(struct exec_state *x, const struct driver_instance *in)
{
	struct sup *s = find(x, in->name);
	Drover__ServiceSpec *spec = copy_spec(in->spec);
	char *dir = strdup(in->release_dir ? in->release_dir : "");

	if (spec == NULL || dir == NULL)
		goto fail;
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL)
			goto fail;
		snprintf(s->name, sizeof(s->name), "%s", in->name);
		s->service = strdup(in->service);
		s->slot = strdup(in->slot);
		if (s->service == NULL || s->slot == NULL) {
			sup_free(s);
			goto fail;
		}
		s->next = x->list;
		x->list = s;
	}
	if (s->spec != NULL)
		drover__service_spec__free_unpacked(s->spec, NULL);
	free(s->release_dir);
	s->spec = spec;
	s->release_dir = dir;
	return s;
fail:
	if (spec != NULL)
		drover__service_spec__free_unpacked(spec, NULL);
	free(dir);
	return NULL;
}

static void pid_path(struct exec_state *x, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/run/%s.pid", x->env.state_dir, name);
}

static void log_path(struct exec_state *x, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/services/%s.log", x->env.log_dir, name);
}

/* --- launching --- */

static int build_argv(const struct sup *s, const struct relprep_image *ic, char ***out)
{
	size_t n = s->spec->n_command ? s->spec->n_command : json_array_size(ic->argv);
	char **a;

	if (n == 0)
		return DRV_EINVAL;
	a = calloc(n + 1, sizeof(*a));
	if (a == NULL)
		return DRV_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *v = s->spec->n_command ? s->spec->command[i]
		                                   : json_string_value(json_array_get(ic->argv, i));
		a[i] = strdup(v ? v : "");
		if (a[i] == NULL) {
			proc_argv_free(a);
			return DRV_ENOMEM;
		}
	}
	*out = a;
	return DRV_OK;
}

/* The program of the command, resolved inside the release root as if it
 * were "/" (an absolute symlink in the image never reaches the host). A
 * binary is executed through the descriptor (fd >= 0); a script (#!) by its
 * path: inside the chroot, or its real path beneath root. */
struct program {
	int fd;
	char path[4200];
};

static int open_program(const char *root, const char *cmd, bool chroot_on, struct program *pg,
                        char *err, size_t size)
{
	char real[4200], magic[2] = {0};
	size_t root_len;
	int fd, rc;

	pg->fd = -1;
	rc = relprep_program(root, cmd, O_RDONLY | O_NONBLOCK | O_NOCTTY, &fd, real, sizeof(real),
	                     &root_len, err, size);
	if (rc != DRV_OK)
		return rc;
	if (pread(fd, magic, sizeof(magic), 0) == 2 && magic[0] == '#' && magic[1] == '!') {
		/* The kernel hands a script to its interpreter by path. */
		snprintf(pg->path, sizeof(pg->path), "%s", chroot_on ? real + root_len : real);
		close(fd);
		return DRV_OK;
	}
	snprintf(pg->path, sizeof(pg->path), "%s", cmd);
	pg->fd = fd;
	return DRV_OK;
}

static int open_log(struct exec_state *x, const char *name)
{
	char path[4200], dir[4200];

	snprintf(dir, sizeof(dir), "%s/services", x->env.log_dir);
	drv_mkdirs(dir, 0750);
	log_path(x, name, path, sizeof(path));
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

/* Who s runs as; chroot only with a privilege drop. */
static int service_privs(const struct sup *s, struct privs *pv, char *err, size_t size)
{
	const Drover__ServiceSpec *sp = s->spec;
	char why[300];
	int rc = privs_resolve(sp->user, sp->group, PRIVS_DEFAULT_USER, sp->capabilities,
	                       sp->n_capabilities, !sp->keep_setid, pv, why, sizeof(why));

	if (rc != DRV_OK)
		return snprintf(err, size, "%s: %s", s->name, why), rc;
	if (sp->isolation == DROVER__ISOLATION__ISOLATION_CHROOT && privs_is_root(pv))
		return snprintf(err, size,
		                "%s: isolation chroot needs an unprivileged user (root can leave"
		                " a chroot)",
		                s->name),
		       DRV_EPERM;
	return DRV_OK;
}

/* Everything launch needs before the fork. */
static int env_add(const char *key, const char *value, void *env)
{
	return proc_env_set(env, key, value);
}

static int launch_prepare(struct sup *s, const char *root, const struct relprep_image *ic,
                          struct privs *pv, char ***argv, struct proc_env *env, struct program *pg,
                          char *err, size_t size)
{
	bool chroot_on = s->spec->isolation == DROVER__ISOLATION__ISOLATION_CHROOT;
	char why[512], real_root[PATH_MAX + 200];
	int rc = service_privs(s, pv, err, size);

	/* DROVER_ROOT without symlinks: the configured path may pass through
	 * directories the service's user cannot search (/etc/drover/agent). */
	if (realpath(root, real_root) == NULL)
		snprintf(real_root, sizeof(real_root), "%s", root);
	if (rc == DRV_OK)
		rc = relprep_secure(s->release_dir, s->spec, pv, err, size);
	if (rc == DRV_OK && (rc = build_argv(s, ic, argv)) == DRV_EINVAL)
		snprintf(err, size, "%s: no command in the instruction or the image", s->name);
	if (rc == DRV_OK)
		rc = relprep_env(s->spec, s->service, s->slot, ic, real_root, env_add, env);
	if (rc == DRV_OK &&
	    (rc = open_program(root, (*argv)[0], chroot_on, pg, why, sizeof(why))) != DRV_OK)
		snprintf(err, size, "%s: %s", s->name, why);
	return rc;
}

/* Fault injection for the tests of a kill in the middle of a launch:
 * DROVER_TEST_DIE_AT=POINT makes the agent SIGKILL itself there. Points:
 * "spawned" (the child forked, no pid file yet) and "pidfile" (the pid
 * file written, the child not yet released to exec). */
static void test_die_at(const char *point)
{
	const char *at = getenv("DROVER_TEST_DIE_AT");

	if (at != NULL && strcmp(at, point) == 0) {
		drv_warn("exec", "DROVER_TEST_DIE_AT: the agent kills itself", "point=%s", point);
		raise(SIGKILL);
	}
}

/* Before the child execs (proc_spec.on_fork): its pid file, durable. A
 * service process runs only once a pid file names it, so an agent killed
 * at any point of a launch leaves either no service process (the child
 * exits unexecuted when the agent's end of the handshake closes) or one
 * that the next agent re-adopts and can stop. */
struct pidfile_arg {
	const char *path;
	char err[300];
};

static int write_pidfile(pid_t pid, void *arg)
{
	struct pidfile_arg *pa = arg;
	int rc;

	test_die_at("spawned");
	rc = pidfile_write(pa->path, pid);
	if (rc != DRV_OK) {
		snprintf(pa->err, sizeof(pa->err), "cannot write pid file %s: %s", pa->path,
		         drv_strerror(rc));
		return rc;
	}
	test_die_at("pidfile");
	return DRV_OK;
}

/* Spawn the process for s (s->spec and s->release_dir set). Locked. */
static int launch(struct exec_state *x, struct sup *s, char *err, size_t size)
{
	char root[4200], pidf[4200], rundir[4200], cwd[8400];
	bool chroot_on = s->spec->isolation == DROVER__ISOLATION__ISOLATION_CHROOT;
	struct program pg = {.fd = -1};
	struct relprep_image ic;
	struct proc_env env;
	struct privs pv;
	char **argv = NULL;
	int rc, logfd = -1, cfd = -1, child_errno = 0;
	pid_t pid;

	snprintf(root, sizeof(root), "%s/rootfs", s->release_dir);
	relprep_image_load(s->release_dir, &ic);
	proc_env_init(&env);
	rc = launch_prepare(s, root, &ic, &pv, &argv, &env, &pg, err, size);
	if (rc != DRV_OK)
		goto out;
	snprintf(rundir, sizeof(rundir), "%s/run", x->env.state_dir);
	drv_mkdirs(rundir, 0750);
	pid_path(x, s->name, pidf, sizeof(pidf));
	struct pidfile_arg pa = {.path = pidf};
	logfd = open_log(x, s->name);
	const char *wd = ic.workdir && ic.workdir[0] == '/' ? ic.workdir : "/";
	snprintf(cwd, sizeof(cwd), "%s%s", chroot_on ? "" : root, chroot_on ? wd : "");
	struct proc_spec ps = {.path = pg.path,
	                       .argv = argv,
	                       .envp = env.vars,
	                       .cwd = cwd,
	                       .chroot_dir = chroot_on ? root : NULL,
	                       .privs = &pv,
	                       .by_fd = pg.fd >= 0,
	                       .exec_fd = pg.fd,
	                       .out_fd = logfd >= 0 ? logfd : open("/dev/null", O_WRONLY),
	                       .on_fork = write_pidfile,
	                       .on_fork_arg = &pa};
	rc = proc_spawn(&ps, &pid, &cfd, &child_errno);
	if (logfd < 0 && ps.out_fd >= 0)
		close(ps.out_fd);
	if (rc != DRV_OK) {
		pidfile_remove(pidf); /* it may name the child that did not exec */
		if (pa.err[0] != '\0')
			snprintf(err, size, "%s: not started: %s", s->name, pa.err);
		else
			snprintf(err, size, "%s: cannot start %s as %s: %s", s->name, argv[0],
			         pv.user, strerror(child_errno ? child_errno : errno));
		goto out;
	}
	s->pid = pid;
	s->is_child = true;
	s->started_ms = drv_mono_ms();
	proc_start_time(pid, &s->start_ticks);
	drv_info("exec", "service started", "instance=%s pid=%d cmd=%s chroot=%d user=\"%s\"",
	         s->name, (int)pid, argv[0], chroot_on, pv.user);
out:
	if (pg.fd >= 0)
		close(pg.fd);
	if (logfd >= 0)
		close(logfd);
	proc_argv_free(argv);
	proc_env_free(&env);
	relprep_image_free(&ic);
	return rc;
}

/* --- liveness --- */

/* Is s's process there? Never reaps. */
static bool alive(const struct sup *s)
{
	uint64_t st;

	if (s->pid <= 0)
		return false;
	if (s->is_child) {
		siginfo_t si = {0};
		if (waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
			return false;
		return si.si_pid != s->pid;
	}
	return proc_start_time(s->pid, &st) == DRV_OK && st == s->start_ticks;
}

/* Has s's process exited? Reaps a child; *exit_status gets its status (-1 unknown). */
static bool exited(struct sup *s, int *exit_status)
{
	int status;

	*exit_status = -1;
	if (s->pid <= 0)
		return true;
	if (s->is_child) {
		pid_t w = waitpid(s->pid, &status, WNOHANG);
		if (w == 0)
			return false;
		if (w == s->pid)
			*exit_status =
			        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		return true;
	}
	return !alive(s);
}

static void on_exit_seen(struct exec_state *x, struct sup *s, int status)
{
	int64_t now = drv_mono_ms(), ran = now - s->started_ms, delay;
	char pidf[4200];

	s->pid = 0;
	s->last_exit = status;
	pid_path(x, s->name, pidf, sizeof(pidf));
	pidfile_remove(pidf);
	s->quick_exits = ran < QUICK_EXIT_MS ? s->quick_exits + 1 : 1;
	delay = BACKOFF_FIRST_MS << (s->quick_exits > 6 ? 5 : s->quick_exits - 1);
	if (delay > BACKOFF_MAX_MS)
		delay = BACKOFF_MAX_MS;
	s->restart_at_ms = now + delay;
	drv_warn("exec", "service exited", "instance=%s status=%d ran_ms=%lld restart_in_ms=%lld",
	         s->name, status, (long long)ran, (long long)delay);
	if (s->quick_exits >= CRASHLOOP_AFTER && !s->crashloop) {
		char msg[256];
		s->crashloop = true;
		snprintf(msg, sizeof(msg),
		         "crash loop: %u exits within %d s of starting, last exit status %d;"
		         " restarting with back-off (now %lld ms)",
		         s->quick_exits, QUICK_EXIT_MS / 1000, status, (long long)delay);
		drv_error("exec", "service is crash-looping", "instance=%s exits=%u", s->name,
		          s->quick_exits);
		queue_notice(x, s, msg);
	}
}

static void rotate(struct exec_state *x, const char *name)
{
	char path[4200], from[4300], to[4300];
	struct stat st;
	int in, out;

	log_path(x, name, path, sizeof(path));
	if (stat(path, &st) < 0 || (unsigned long)st.st_size <= x->log_max)
		return;
	snprintf(from, sizeof(from), "%s.%u", path, x->log_keep);
	unlink(from); /* the oldest goes */
	for (int i = (int)x->log_keep - 1; i >= 1; i--) {
		snprintf(from, sizeof(from), "%s.%d", path, i);
		snprintf(to, sizeof(to), "%s.%d", path, i + 1);
		rename(from, to);
	}
	/* Copy then truncate: the process keeps its O_APPEND descriptor. */
	snprintf(to, sizeof(to), "%s.1", path);
	in = open(path, O_RDWR | O_CLOEXEC);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (in >= 0 && out >= 0) {
		char buf[65536];
		ssize_t n;
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n)
				break;
		if (ftruncate(in, 0) < 0)
			drv_warn("exec", "cannot truncate log", "path=%s", path);
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
}

static void tick(void *state)
{
	struct exec_state *x = state;
	int64_t now = drv_mono_ms();
	char err[512];
	int status;

	pthread_mutex_lock(&x->lock);
	for (struct sup *s = x->list; s != NULL; s = s->next) {
		if (!s->want)
			continue;
		if (s->pid > 0 && exited(s, &status))
			on_exit_seen(x, s, status);
		if (s->pid == 0 && now >= s->restart_at_ms) {
			s->restarts++;
			if (launch(x, s, err, sizeof(err)) != DRV_OK) {
				drv_error("exec", "restart failed", "instance=%s error=\"%s\"",
				          s->name, err);
				s->started_ms = now;
				on_exit_seen(x, s, 127);
			}
		}
		if (s->pid > 0 && s->crashloop && now - s->started_ms > QUICK_EXIT_MS) {
			s->crashloop = false;
			s->quick_exits = 0;
			drv_info("exec", "service left its crash loop", "instance=%s", s->name);
		}
		rotate(x, s->name);
	}
	pthread_mutex_unlock(&x->lock);
	flush_notices(x);
}

/* --- ops --- */

static int init(const struct driver_env *env, void **state)
{
	struct exec_state *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return DRV_ENOMEM;
	x->env = *env;
	x->log_max = env->log_max_bytes ? env->log_max_bytes : LOG_MAX_DEFAULT;
	x->log_keep = env->log_keep ? env->log_keep : LOG_KEEP_DEFAULT;
	pthread_mutex_init(&x->lock, NULL);
	*state = x;
	return DRV_OK;
}

static void fini(void *state)
{
	struct exec_state *x = state;
	struct sup *s, *next;

	if (x == NULL)
		return;
	for (s = x->list; s != NULL; s = next) {
		next = s->next;
		sup_free(s);
	}
	pthread_mutex_destroy(&x->lock);
	free(x);
}

static int prepare(void *state, struct driver_instance *in, bool local_only, char **dir_out,
                   char *err, size_t size)
{
	struct exec_state *x = state;

	return relprep_stage(x->env.puller, in, local_only, dir_out, err, size);
}

/* Stop s's process (locked). */
static int stop_locked(struct exec_state *x, struct sup *s, uint32_t grace_ms)
{
	char pidf[4200];
	int rc = DRV_OK;

	s->want = false;
	if (s->pid > 0) {
		if (alive(s)) {
			drv_info("exec", "stopping service", "instance=%s pid=%d grace_ms=%u",
			         s->name, (int)s->pid, grace_ms);
			rc = proc_stop_group(s->pid, grace_ms, s->is_child);
		}
		if (s->is_child)
			waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
	pid_path(x, s->name, pidf, sizeof(pidf));
	pidfile_remove(pidf);
	return rc;
}

static int start(void *state, const struct driver_instance *in, char *err, size_t size)
{
	struct exec_state *x = state;
	struct sup *s;
	int rc;

	pthread_mutex_lock(&x->lock);
	s = upsert(x, in);
	if (s == NULL) {
		pthread_mutex_unlock(&x->lock);
		return DRV_ENOMEM;
	}
	stop_locked(x, s, in->spec->stop_grace_ms ? in->spec->stop_grace_ms : GRACE_DEFAULT_MS);
	s->quick_exits = 0;
	s->restarts = 0;
	s->crashloop = false;
	rc = launch(x, s, err, size);
	s->want = rc == DRV_OK;
	pthread_mutex_unlock(&x->lock);
	return rc;
}

static int stop(void *state, const struct driver_instance *in, uint32_t grace_ms, char *err,
                size_t size)
{
	struct exec_state *x = state;
	char pidf[4200];
	struct sup *s;
	pid_t pid;
	int rc = DRV_OK;

	(void)err;
	(void)size;
	pthread_mutex_lock(&x->lock);
	s = find(x, in->name);
	if (s != NULL) {
		rc = stop_locked(x, s, grace_ms);
	} else {
		/* Not supervised by us, but maybe still running from an earlier agent. */
		pid_path(x, in->name, pidf, sizeof(pidf));
		if (pidfile_alive(pidf, &pid) == DRV_OK)
			rc = proc_stop_group(pid, grace_ms, false);
		pidfile_remove(pidf);
	}
	pthread_mutex_unlock(&x->lock);
	return rc;
}

static int status(void *state, const struct driver_instance *in, struct driver_status *out)
{
	struct exec_state *x = state;
	struct driver_status r = {0};
	char pidf[4200];
	struct sup *s;
	pid_t pid;

	pthread_mutex_lock(&x->lock);
	s = find(x, in->name);
	if (s == NULL) {
		pid_path(x, in->name, pidf, sizeof(pidf));
		if (pidfile_alive(pidf, &pid) == DRV_OK) {
			r.state = DRIVER_RUNNING;
			r.pid = pid;
		}
	} else {
		if (alive(s))
			r.state = s->crashloop ? DRIVER_FAILED : DRIVER_RUNNING;
		else if (s->want)
			r.state = s->crashloop ? DRIVER_FAILED : DRIVER_STARTING;
		else
			r.state = DRIVER_STOPPED;
		r.pid = s->pid;
		r.restarts = s->restarts;
		if (alive(s)) /* started_ms is monotonic: as wall clock */
			r.alive_since_ms = drv_wall_ms() - (drv_mono_ms() - s->started_ms);
		if (s->crashloop)
			snprintf(r.detail, sizeof(r.detail),
			         "crash-looping: %u quick exits, last"
			         " status %d",
			         s->quick_exits, s->last_exit);
		else if (s->quick_exits > 0) /* it exited since its start */
			snprintf(r.detail, sizeof(r.detail), "exit status %d", s->last_exit);
	}
	pthread_mutex_unlock(&x->lock);
	*out = r;
	return DRV_OK;
}

static int adopt(void *state, const struct driver_instance *in, char *err, size_t size)
{
	struct exec_state *x = state;
	char pidf[4200], msg[300];
	struct sup *s;
	pid_t pid;
	int rc = DRV_OK;

	pthread_mutex_lock(&x->lock);
	s = upsert(x, in);
	if (s == NULL) {
		pthread_mutex_unlock(&x->lock);
		return DRV_ENOMEM;
	}
	pid_path(x, in->name, pidf, sizeof(pidf));
	s->want = true;
	if (pidfile_alive(pidf, &pid) == DRV_OK) {
		s->pid = pid;
		s->is_child = false;
		proc_start_time(pid, &s->start_ticks);
		s->started_ms = drv_mono_ms() - QUICK_EXIT_MS;
		drv_info("exec", "re-adopted a running service", "instance=%s pid=%d", in->name,
		         (int)pid);
	} else {
		snprintf(msg, sizeof(msg),
		         "%s was not running when the agent started; starting it again", in->name);
		drv_warn("exec", "service not running after agent restart, starting it",
		         "instance=%s", in->name);
		queue_notice(x, s, msg);
		rc = launch(x, s, err, size);
		if (rc != DRV_OK) {
			s->started_ms = drv_mono_ms();
			on_exit_seen(x, s, 127);
		}
	}
	pthread_mutex_unlock(&x->lock);
	flush_notices(x);
	return rc;
}

/* on_config: reload: the running process keeps running; its release gets
 * the new spec's files and the process a SIGHUP. A restart later (crash,
 * re-adoption) starts it with the new spec. */
static int reload(void *state, const struct driver_instance *in, char *err, size_t size)
{
	struct exec_state *x = state;
	Drover__ServiceSpec *spec = copy_spec(in->spec);
	struct privs pv;
	struct sup *s;
	int rc;

	if (spec == NULL)
		return DRV_ENOMEM;
	pthread_mutex_lock(&x->lock);
	s = find(x, in->name);
	if (s == NULL || s->pid <= 0 || !s->want) {
		pthread_mutex_unlock(&x->lock);
		drover__service_spec__free_unpacked(spec, NULL);
		return snprintf(err, size, "%s is not running", in->name), DRV_ESTATE;
	}
	drover__service_spec__free_unpacked(s->spec, NULL);
	s->spec = spec;
	rc = service_privs(s, &pv, err, size);
	if (rc == DRV_OK)
		rc = relprep_secure(s->release_dir, s->spec, &pv, err, size);
	if (rc == DRV_OK && kill(s->pid, SIGHUP) != 0) {
		snprintf(err, size, "%s: SIGHUP to pid %d: %s", s->name, (int)s->pid,
		         strerror(errno));
		rc = DRV_ESYS;
	}
	if (rc == DRV_OK)
		drv_info("exec", "service reloaded", "instance=%s pid=%d version=%s", s->name,
		         (int)s->pid, s->spec->version);
	pthread_mutex_unlock(&x->lock);
	return rc;
}

const struct driver_ops driver_exec_ops = {
        .name = "exec",
        .init = init,
        .fini = fini,
        .prepare = prepare,
        .start = start,
        .stop = stop,
        .status = status,
        .adopt = adopt,
        .reload = reload,
        .tick = tick,
};
