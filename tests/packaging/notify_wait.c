/*
 * notify_wait.c: stand in for systemd's notification socket in tests.
 *
 *   notify_wait SOCKET_PATH TIMEOUT_MS [WANT]...
 *
 * Binds an AF_UNIX datagram socket at SOCKET_PATH (mode 0666, so a daemon
 * running as another user can send), prints every datagram it receives on
 * one line to stdout, and exits 0 once it has seen each WANT line (default
 * "READY=1") in that order, 1 when TIMEOUT_MS pass first, 2 on a usage or
 * socket error. The socket file is removed on exit.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Does the newline-separated message hold the line want? */
static int has_line(const char *msg, const char *want)
{
	size_t n = strlen(want);
	const char *p = msg;

	while ((p = strstr(p, want)) != NULL) {
		if ((p == msg || p[-1] == '\n') && (p[n] == '\0' || p[n] == '\n'))
			return 1;
		p += n;
	}
	return 0;
}

static int wait_for(int fd, long long deadline, const char *want)
{
	char buf[4096], line[4096];

	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return 1;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0)
			return 2;
		buf[n] = '\0';
		memcpy(line, buf, (size_t)n + 1);
		for (char *c = line; *c; c++)
			if (*c == '\n')
				*c = ' ';
		printf("notify: %s\n", line);
		fflush(stdout);
		if (has_line(buf, want))
			return 0;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd, rc = 0;
	long long deadline;

	if (argc < 3 || strlen(argv[1]) >= sizeof(a.sun_path)) {
		fprintf(stderr, "usage: notify_wait SOCKET_PATH TIMEOUT_MS [WANT]...\n");
		return 2;
	}
	strcpy(a.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    chmod(argv[1], 0666) != 0) {
		perror("notify_wait: socket");
		return 2;
	}
	deadline = now_ms() + atoll(argv[2]);
	if (argc == 3)
		rc = wait_for(fd, deadline, "READY=1");
	for (int i = 3; i < argc && rc == 0; i++)
		rc = wait_for(fd, deadline, argv[i]);
	unlink(argv[1]);
	close(fd);
	return rc;
}
