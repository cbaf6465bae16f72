/* fetch_helper.c: the unprivileged fetch helper and the agent's side of it. */
#include "fetch_helper.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#include "clock.h"
#include "err.h"
#include "log.h"
#include "privs.h"
#include "puller.h"

/* ---- the helper ---- */

static int say(const uint8_t *f, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, f, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return 1;
		f += w;
		n -= (size_t)w;
	}
	return 0;
}

static int say_error(const char *msg)
{
	uint8_t f[FETCH_FRAME_MAX + 4];
	size_t n = fetch_frame_error(msg, f, sizeof(f));

	say(f, n);
	return 1;
}

int fetch_helper_main(int argc, char **argv)
{
	const char *ref = NULL, *digest = NULL;
	long long within_ms = 0;
	struct puller_config pc = {.cache_dir = ".", .releases_dir = "."};
	struct puller_stats st = {0};
	struct puller *p = NULL;
	char err[FETCH_ERROR_MAX + 1] = "";
	uint8_t f[FETCH_FRAME_MAX + 4];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--reference") == 0 && i + 1 < argc)
			ref = argv[++i];
		else if (strcmp(argv[i], "--digest") == 0 && i + 1 < argc)
			digest = argv[++i];
		else if (strcmp(argv[i], "--insecure") == 0)
			pc.insecure = 1;
		else if (strcmp(argv[i], "--stall-s") == 0 && i + 1 < argc)
			pc.stall_s = atol(argv[++i]);
		else if (strcmp(argv[i], "--within-ms") == 0 && i + 1 < argc)
			within_ms = atoll(argv[++i]);
		else
			return fprintf(stderr, "drover-agent fetch: unknown argument %s\n",
			               argv[i]),
			       2;
	}
	if (ref == NULL || digest == NULL)
		return fprintf(stderr, "usage: drover-agent fetch --reference REF --digest "
		                       "sha256:HEX [--insecure] [--stall-s N]\n"),
		       2;
	rc = puller_new(&pc, &p);
	if (rc == DRV_OK)
		rc = puller_fetch(p, ref, digest, within_ms > 0 ? drv_mono_ms() + within_ms : 0,
		                  &st, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "fetch helper: cannot open the cache: %s",
		         drv_strerror(rc));
	puller_free(p);
	if (rc != DRV_OK)
		return say_error(err[0] ? err : drv_strerror(rc));
	struct fetch_done d = {.bytes_fetched = st.bytes_fetched,
	                       .bytes_cached = st.bytes_cached,
	                       .blobs_fetched = st.blobs_fetched,
	                       .blobs_cached = st.blobs_cached,
	                       .fetch_ms = st.fetch_ms > 0 ? (uint64_t)st.fetch_ms : 0,
	                       .uid = (uint32_t)getuid(),
	                       .gid = (uint32_t)getgid(),
	                       .no_new_privs = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1};
	return say(f, fetch_frame_done(&d, f, sizeof(f)));
}

/* ---- the agent's side ---- */

static int resolve_user(const struct fetch_helper_cfg *cfg, struct privs *pv, char *err,
                        size_t size)
{
	const char *user = cfg->user;

	if (user == NULL)
		user = getpwnam(FETCH_USER) != NULL ? FETCH_USER : PRIVS_DEFAULT_USER;
	return privs_resolve(user, NULL, user, NULL, 0, true, pv, err, size);
}

/* Hand one directory to the helper's user: dir is opened relative to at
 * without following a link (the helper owns its parent and could have put
 * one there), then changed through the descriptor. -1 on failure. */
static int hand_dir(int at, const char *name, const struct privs *pv)
{
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0 && (fchown(fd, pv->uid, pv->gid) != 0 || fchmod(fd, 0750) != 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Partial downloads: regular files with one link only (a hard link to
 * another file must not change that file's owner). */
static void hand_partials(int dfd, const struct privs *pv)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	struct stat st;

	if (d == NULL) {
		close(dfd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid == pv->uid)
			continue;
		if (fchownat(dirfd(d), e->d_name, pv->uid, pv->gid, AT_SYMLINK_NOFOLLOW) != 0)
			drv_warn("fetch", "cannot hand a partial blob to the helper",
			         "name=%s errno=%d", e->d_name, errno);
	}
	closedir(d);
}

/* The cache's directories (and partial downloads) belong to the helper's
 * user: the one place it writes. Blobs stay whoever's they are: the helper
 * only adds new ones, and every one is hashed again before use. */
static int own_cache(const char *cache, const struct privs *pv, char *err, size_t size)
{
	int top, blobs = -1, sha = -1, part = -1, rc = DRV_OK;

	if (!pv->change_ids)
		return DRV_OK;
	top = open(cache, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* configured: links followed */
	if (top < 0 || fchown(top, pv->uid, pv->gid) != 0 || fchmod(top, 0750) != 0)
		rc = DRV_ESYS;
	if (rc == DRV_OK && (blobs = hand_dir(top, "blobs", pv)) < 0)
		rc = DRV_ESYS;
	if (rc == DRV_OK && (sha = hand_dir(blobs, "sha256", pv)) < 0)
		rc = DRV_ESYS;
	if (rc == DRV_OK && (part = hand_dir(top, "partial", pv)) < 0)
		rc = DRV_ESYS;
	if (rc != DRV_OK)
		snprintf(err, size,
		         "cannot hand the cache %s to %s: %s (its blobs, blobs/sha256 and "
		         "partial must be directories)",
		         cache, pv->user, strerror(errno));
	else
		hand_partials(part, pv), part = -1;
	const int fds[] = {top, blobs, sha, part};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

/* In the child: only async-signal-safe calls until exec. The executable
 * was opened before the drop (exe_fd), so the helper's user needs no access
 * to the directories it lies in. */
static void child(const struct fetch_helper_cfg *cfg, const struct privs *pv, int wfd, int exe_fd,
                  char *const argv[])
{
	int null = open("/dev/null", O_RDONLY);

	sigset_t none;

	/* The agent blocks the signals its serve loop waits for; the mask (and
	 * an ignored disposition) would survive the exec, and a helper that
	 * cannot see SIGTERM would hold a stopping agent until SIGKILL. */
	sigemptyset(&none);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* its own process group: a cancel kills whatever it started too */
	if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(wfd, STDOUT_FILENO) < 0 ||
	    setpgid(0, 0) != 0)
		_exit(127);
	if (dup2(exe_fd, 3) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
		_exit(127);
	if (syscall(SYS_close_range, 4u, ~0u, 0u) != 0) {
		for (int fd = 4; fd < 1024; fd++)
			close(fd);
	}
	if (chdir(cfg->cache) != 0 || privs_apply(pv) != 0)
		_exit(126);
	syscall(SYS_execveat, 3, "", argv, environ, AT_EMPTY_PATH);
	_exit(127);
}

enum stop_why { STOP_NONE, STOP_CANCEL, STOP_DEADLINE };

/* Read the helper's frame until EOF. A cancel, or the deadline passed by
 * FETCH_KILL_MS (the helper ends its pull at the deadline itself), kills
 * its process group and ends the wait once it is gone (*reaped, *status). */
static void follow(const struct fetch_helper_cfg *cfg, pid_t pid, int rfd, struct fetch_reader *r,
                   enum stop_why *why, bool *reaped, int *status)
{
	struct pollfd pfd = {.fd = rfd, .events = POLLIN};
	int64_t kill_at = 0;
	uint8_t buf[512];

	for (;;) {
		if (*why == STOP_NONE &&
		    (stop_token_stopped(cfg->cancel) ||
		     (cfg->deadline_ms > 0 && drv_mono_ms() >= cfg->deadline_ms + FETCH_KILL_MS))) {
			*why = stop_token_stopped(cfg->cancel) ? STOP_CANCEL : STOP_DEADLINE;
			kill(-pid, SIGTERM);
			kill_at = drv_mono_ms() + FETCH_KILL_MS;
		}
		if (kill_at > 0 && drv_mono_ms() >= kill_at) {
			kill(-pid, SIGKILL);
			kill_at = 0;
		}
		if (*why != STOP_NONE && waitpid(pid, status, WNOHANG) == pid) {
			*reaped = true;
			kill(-pid, SIGKILL); /* what it left behind */
			break;
		}
		int n = poll(&pfd, 1, 100);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		ssize_t got = read(rfd, buf, sizeof(buf));
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0)
			break;
		if (fetch_reader_feed(r, buf, (size_t)got) == FETCH_BAD) {
			kill(-pid, SIGKILL);
			break;
		}
	}
	fetch_reader_eof(r);
}

int fetch_helper_run(const struct fetch_helper_cfg *cfg, const char *reference, const char *digest,
                     struct fetch_done *done, char *err, size_t size)
{
	char stall[32], within[32];
	char *argv[] = {"drover-agent",
	                "fetch",
	                "--reference",
	                (char *)reference,
	                "--digest",
	                (char *)digest,
	                "--stall-s",
	                stall,
	                "--within-ms",
	                within,
	                cfg->insecure ? "--insecure" : NULL,
	                NULL};
	struct fetch_reader *r;
	struct privs pv;
	enum stop_why why = STOP_NONE;
	bool reaped = false;
	int fds[2], status = 0, exe_fd = -1, rc;
	int64_t left = cfg->deadline_ms > 0 ? cfg->deadline_ms - drv_mono_ms() : 0;
	pid_t pid;

	if (cfg->deadline_ms > 0 && left <= 0)
		return snprintf(err, size, "%s: pull stopped at the step deadline", reference),
		       DRV_ETIMEDOUT;
	snprintf(stall, sizeof(stall), "%ld", cfg->stall_s);
	snprintf(within, sizeof(within), "%lld", (long long)left);
	r = malloc(sizeof(*r));
	if (r == NULL)
		return DRV_ENOMEM;
	fetch_reader_init(r);
	rc = resolve_user(cfg, &pv, err, size);
	if (rc == DRV_OK)
		rc = own_cache(cfg->cache, &pv, err, size);
	if (rc == DRV_OK && (exe_fd = open(cfg->exe, O_RDONLY | O_CLOEXEC)) < 0)
		rc = (snprintf(err, size, "fetch helper: cannot open %s: %s", cfg->exe,
		               strerror(errno)),
		      DRV_ESYS);
	if (rc == DRV_OK && pipe2(fds, O_CLOEXEC) != 0)
		rc = (snprintf(err, size, "fetch helper: pipe: %s", strerror(errno)), DRV_ESYS);
	if (rc != DRV_OK)
		goto out_free;
	pid = fork();
	if (pid == 0)
		child(cfg, &pv, fds[1], exe_fd, argv);
	close(fds[1]);
	close(exe_fd);
	exe_fd = -1;
	if (pid < 0) {
		close(fds[0]);
		rc = (snprintf(err, size, "fetch helper: fork: %s", strerror(errno)), DRV_ESYS);
		goto out_free;
	}
	setpgid(pid, pid); /* also here: no race with the kill above */
	follow(cfg, pid, fds[0], r, &why, &reaped, &status);
	close(fds[0]);
	while (!reaped && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (why == STOP_CANCEL)
		rc = (snprintf(err, size, "%s: pull cancelled: the agent is stopping", reference),
		      DRV_ECANCELED);
	else if (why == STOP_DEADLINE)
		rc = (snprintf(err, size, "%s: pull stopped at the step deadline (%lld ms)",
		               reference, (long long)left),
		      DRV_ETIMEDOUT);
	else if (r->res.kind == FETCH_DONE && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		*done = r->res.done;
	else if (r->res.kind == FETCH_ERROR)
		rc = (snprintf(err, size, "%s", r->res.error), DRV_EIO);
	else if (WIFEXITED(status) && WEXITSTATUS(status) >= 126)
		rc = (snprintf(err, size,
		               "fetch helper %s could not start as %s (exit %d: %s); see the log",
		               cfg->exe, pv.user, WEXITSTATUS(status),
		               WEXITSTATUS(status) == 126
		                       ? "cannot enter the cache or drop privileges"
		                       : "cannot exec"),
		      DRV_EIO);
	else if (r->res.kind == FETCH_BAD)
		rc = (snprintf(err, size, "%s", r->res.error), DRV_EIO);
	else
		rc = (snprintf(err, size, "fetch helper for %s ended with status 0x%x as %s",
		               reference, (unsigned)status, pv.user),
		      DRV_EIO);
out_free:
	if (exe_fd >= 0)
		close(exe_fd);
	free(r);
	return rc;
}
