/*
 * traffic_hook.c: the "command" traffic kind (a balancer of kind command in
 * droverd.yaml; never configured by a plan). Runs the configured command with
 * the operation appended (posix_spawnp, its own process group, stdin from
 * /dev/null), waits on a pidfd against the deadline and kills the group when
 * it passes.
 */
#include "traffic_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "log.h"

#define MOD "traffic"

extern char **environ;

struct hook {
	char **argv; /* configured words, NULL-terminated */
	size_t argc;
	int64_t timeout_ms;
};

static void free_words(char **w, size_t n)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < n; i++)
		free(w[i]);
	free(w);
}

static int hook_open(const struct drv_traffic_config *cfg, void **state)
{
	struct hook *h;
	size_t n = 0, i;

	while (cfg->argv != NULL && cfg->argv[n] != NULL)
		if (++n > DRV_TRAFFIC_ARGV_MAX)
			return DRV_EINVAL;
	if (n == 0 || cfg->argv[0][0] == '\0')
		return DRV_EINVAL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return DRV_ENOMEM;
	h->argv = calloc(n + 1, sizeof(*h->argv));
	if (h->argv == NULL)
		goto out_free;
	for (i = 0; i < n; i++) {
		h->argv[i] = strdup(cfg->argv[i]);
		if (h->argv[i] == NULL)
			goto out_free;
		h->argc++;
	}
	h->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DRV_TRAFFIC_TIMEOUT_MS;
	*state = h;
	return DRV_OK;
out_free:
	free_words(h->argv, h->argc);
	free(h);
	return DRV_ENOMEM;
}

static void hook_close(void *state)
{
	struct hook *h = state;

	if (h == NULL)
		return;
	free_words(h->argv, h->argc);
	free(h);
}

/* Wait for PID until the deadline; SIGKILL its group past it. */
static int reap(pid_t pid, struct drv_deadline dl, int *status)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p = {.fd = pfd, .events = POLLIN};
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			break;
		if (drv_deadline_passed(dl, drv_mono_ms())) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			if (pfd >= 0)
				close(pfd);
			return DRV_ETIMEDOUT;
		}
		/* Without a pidfd (old kernel), poll() on nothing is a 20 ms sleep. */
		poll(pfd >= 0 ? &p : NULL, pfd >= 0 ? 1 : 0,
		     (int)drv_deadline_left(dl, drv_mono_ms(), pfd >= 0 ? INT32_MAX : 20));
	}
	if (pfd >= 0)
		close(pfd);
	return r == pid ? DRV_OK : DRV_ESYS;
}

/* Run the hook with EXTRA (NEXTRA words) appended. */
static int run(const struct hook *h, char *const *extra, size_t nextra, int64_t timeout_ms)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	char **argv;
	pid_t pid;
	int rc, status = 0;

	argv = calloc(h->argc + nextra + 1, sizeof(*argv));
	if (argv == NULL)
		return DRV_ENOMEM;
	memcpy(argv, h->argv, h->argc * sizeof(*argv));
	memcpy(argv + h->argc, extra, nextra * sizeof(*argv));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&at, 0);
	rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0) {
		drv_warn(MOD, "cannot run the traffic hook", "cmd=%s error=\"%s\"", argv[0],
		         strerror(rc));
		free(argv);
		return DRV_EIO;
	}
	rc = reap(pid, drv_deadline_in(timeout_ms), &status);
	if (rc == DRV_OK && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		drv_warn(MOD, "traffic hook failed", "cmd=%s op=%s status=%d signal=%d", argv[0],
		         extra[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		         WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		rc = DRV_EIO;
	} else if (rc == DRV_ETIMEDOUT) {
		drv_warn(MOD, "traffic hook timed out", "cmd=%s op=%s timeout_ms=%lld", argv[0],
		         extra[0], (long long)timeout_ms);
	}
	free(argv);
	return rc;
}

/* Words: OP BACKEND [WORD] then one word per item, built by FMT. */
struct words {
	char **w;
	size_t n;
};

static int words_init(struct words *ws, size_t items, const char *op, const char *backend,
                      const char *word)
{
	ws->n = 0;
	ws->w = calloc(items + 4, sizeof(*ws->w));
	if (ws->w == NULL)
		return DRV_ENOMEM;
	ws->w[ws->n++] = strdup(op);
	ws->w[ws->n++] = strdup(backend);
	if (word != NULL)
		ws->w[ws->n++] = strdup(word);
	for (size_t i = 0; i < ws->n; i++)
		if (ws->w[i] == NULL)
			return DRV_ENOMEM;
	return DRV_OK;
}

static int words_add(struct words *ws, char *s)
{
	if (s == NULL)
		return DRV_ENOMEM;
	ws->w[ws->n++] = s;
	return DRV_OK;
}

static int words_run(const struct hook *h, struct words *ws, int rc, int64_t timeout_ms)
{
	if (rc == DRV_OK)
		rc = run(h, ws->w, ws->n, timeout_ms);
	free_words(ws->w, ws->n);
	return rc;
}

static int hook_weights(void *state, const char *backend, const struct drv_traffic_weight *w,
                        size_t n)
{
	struct hook *h = state;
	struct words ws;
	char *s;
	size_t i;
	int rc;

	rc = words_init(&ws, n, "weights", backend, NULL);
	for (i = 0; rc == DRV_OK && i < n; i++) {
		if (asprintf(&s, "%s=%d", w[i].server, w[i].weight) < 0)
			s = NULL;
		rc = words_add(&ws, s);
	}
	return words_run(h, &ws, rc, h->timeout_ms);
}

static int hook_servers(struct hook *h, const char *op, const char *backend, const char *word,
                        const char *const *servers, size_t n, int64_t timeout_ms)
{
	struct words ws;
	size_t i;
	int rc;

	rc = words_init(&ws, n, op, backend, word);
	for (i = 0; rc == DRV_OK && i < n; i++)
		rc = words_add(&ws, strdup(servers[i]));
	return words_run(h, &ws, rc, timeout_ms);
}

static int hook_switch(void *state, const char *backend, const char *const *servers, size_t n)
{
	struct hook *h = state;

	return hook_servers(h, "switch", backend, NULL, servers, n, h->timeout_ms);
}

static int hook_state(void *state, const char *backend, const char *const *servers, size_t n,
                      enum drv_traffic_state st)
{
	static const char *const names[] = {[DRV_TRAFFIC_READY] = "ready",
	                                    [DRV_TRAFFIC_DRAIN] = "drain",
	                                    [DRV_TRAFFIC_MAINT] = "maint"};
	struct hook *h = state;

	return hook_servers(h, "state", backend, names[st], servers, n, h->timeout_ms);
}

static int hook_wait_up(void *state, const char *backend, const char *const *servers, size_t n,
                        int64_t timeout_ms, char *why, size_t cap)
{
	char ms[24];

	(void)why; /* the command's output goes to droverd's stderr */
	(void)cap;
	snprintf(ms, sizeof(ms), "%lld", (long long)timeout_ms);
	/* The hook gets its own bound plus a little to report. */
	return hook_servers(state, "wait-up", backend, ms, servers, n, timeout_ms + 2000);
}

const struct drv_traffic_ops drv_traffic_hook_ops = {
        .kind = "command",
        .open = hook_open,
        .set_weights = hook_weights,
        .switch_to = hook_switch,
        .set_state = hook_state,
        .wait_up = hook_wait_up,
        .close = hook_close,
};
