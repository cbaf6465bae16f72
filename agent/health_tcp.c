/* health_tcp.c: a TCP connect within the timeout is healthy. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "health.h"

static bool probe(const Drover__HealthCheck *hc, const struct health_target *t, uint32_t timeout_ms,
                  char *detail, size_t size)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	const char *host = t->host && t->host[0] ? t->host : "127.0.0.1";
	char port[16];
	int fd, err = 0;
	socklen_t len = sizeof(err);
	bool ok = false;

	(void)hc;
	snprintf(port, sizeof(port), "%u", t->port);
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
		snprintf(detail, size, "tcp %s:%s: cannot resolve", host, port);
		return false;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno == EINPROGRESS) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (poll(&p, 1, (int)timeout_ms) == 1 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
			ok = true;
		else if (err == 0)
			err = ETIMEDOUT;
	} else if (fd >= 0) {
		ok = true;
	}
	if (ok)
		snprintf(detail, size, "tcp %s:%s: connected", host, port);
	else
		snprintf(detail, size, "tcp %s:%s: %s", host, port, strerror(err ? err : errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return ok;
}

const struct health_kind_ops health_tcp_ops = {.name = "tcp", .probe = probe};
