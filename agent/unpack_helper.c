/* unpack_helper.c: layers unpacked in a process of their own (see
 * unpack_helper.h). */
#include "unpack_helper.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "sha256.h"

extern char **environ;

int unpack_reply_parse(const char *buf, size_t len, struct unpack_stats *stats, char *err,
                       size_t err_size)
{
	char line[UNPACK_REPLY_MAX + 1];
	unsigned long long e, b, w;
	int used = 0;

	if (len > UNPACK_REPLY_MAX)
		len = UNPACK_REPLY_MAX;
	memcpy(line, buf, len);
	line[len] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (sscanf(line, "ok %llu %llu %llu%n", &e, &b, &w, &used) == 3 && line[used] == '\0') {
		*stats = (struct unpack_stats){e, b, w};
		return DRV_OK;
	}
	if (strncmp(line, "error ", 6) == 0) {
		snprintf(err, err_size, "%s", line + 6);
		return DRV_EPERM; /* what unpack_layer_fd returns for a refused layer */
	}
	if (strncmp(line, "corrupt ", 8) == 0) {
		snprintf(err, err_size, "the layer hashes to %.80s", line + 8);
		return DRV_EDECODE;
	}
	snprintf(err, err_size, "unpack helper: no result");
	return DRV_EIO;
}

int unpack_helper_main(int argc, char **argv)
{
	struct unpack_stats st = {0};
	char err[512] = "", got[DRV_DIGEST_STR];
	int rc;

	if (argc > 2 || (argc == 2 && !drv_digest_valid(argv[1]))) {
		fprintf(stderr,
		        "usage: drover-agent unpack-layer [sha256:HEX] <LAYER 3<ROOT_DIR\n");
		return 2;
	}
	rc = unpack_layer_fd(STDIN_FILENO, 3, argc == 2 ? argv[1] : NULL, got, &st, err,
	                     sizeof(err));
	if (rc == DRV_EDECODE && got[0] != '\0') {
		printf("corrupt %s\n", got);
		return 1;
	}
	if (rc == DRV_OK)
		printf("ok %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", st.entries, st.bytes,
		       st.whiteouts);
	else
		printf("error %.*s\n", (int)strcspn(err, "\n"), err[0] ? err : drv_strerror(rc));
	return rc == DRV_OK ? 0 : 1;
}

/* In the child: only async-signal-safe calls until exec. */
static void child(int exe_fd, int layer_fd, int root_fd, int wfd, char **argv)
{
	sigset_t none;

	sigemptyset(&none);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* first out of the way (F_DUPFD: at 100 or above), then into place */
	int in = fcntl(layer_fd, F_DUPFD, 100), root = fcntl(root_fd, F_DUPFD, 100);
	int out = fcntl(wfd, F_DUPFD, 100), ex = fcntl(exe_fd, F_DUPFD, 100);

	if (in < 0 || root < 0 || out < 0 || ex < 0 || dup2(in, STDIN_FILENO) < 0 ||
	    dup2(out, STDOUT_FILENO) < 0 || dup2(root, 3) < 0 || dup2(ex, 4) < 0 ||
	    fcntl(4, F_SETFD, FD_CLOEXEC) < 0)
		_exit(127);
	if (syscall(SYS_close_range, 5u, ~0u, 0u) != 0) {
		for (int fd = 5; fd < 1024; fd++)
			close(fd);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		_exit(126);
	syscall(SYS_execveat, 4, "", argv, environ, AT_EMPTY_PATH);
	_exit(127);
}

static size_t read_reply(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n < cap) {
		ssize_t k = read(fd, buf + n, cap - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	return n;
}

int unpack_helper_run(const char *exe, int layer_fd, int root_fd, const char *digest,
                      struct unpack_stats *stats, char *err, size_t err_size)
{
	char *argv[] = {"drover-agent", "unpack-layer", (char *)digest, NULL};
	char buf[UNPACK_REPLY_MAX];
	int fds[2], status = 0, exe_fd, rc;
	size_t n;
	pid_t pid;

	exe_fd = open(exe, O_RDONLY | O_CLOEXEC);
	if (exe_fd < 0)
		return snprintf(err, err_size, "unpack helper: cannot open %s: %s", exe,
		                strerror(errno)),
		       DRV_ESYS;
	if (pipe2(fds, O_CLOEXEC) != 0) {
		close(exe_fd);
		return snprintf(err, err_size, "unpack helper: pipe: %s", strerror(errno)),
		       DRV_ESYS;
	}
	pid = fork();
	if (pid == 0)
		child(exe_fd, layer_fd, root_fd, fds[1], argv);
	close(fds[1]);
	close(exe_fd);
	if (pid < 0) {
		close(fds[0]);
		return snprintf(err, err_size, "unpack helper: fork: %s", strerror(errno)),
		       DRV_ESYS;
	}
	n = read_reply(fds[0], buf, sizeof(buf));
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	rc = unpack_reply_parse(buf, n, stats, err, err_size);
	if (rc == DRV_OK && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		rc = DRV_EIO;
	if (rc == DRV_EIO)
		snprintf(err, err_size, "unpack helper %s ended with status 0x%x without a result",
		         exe, (unsigned)status);
	return rc;
}
