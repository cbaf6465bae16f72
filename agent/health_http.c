/* health_http.c: an HTTP GET whose status is in range (and whose body holds
 * body_match, when set) is healthy.
 *
 * Spoken over a plain socket (HTTP/1.0, "Connection: close", so the answer
 * is neither chunked nor kept alive): a probe runs every few milliseconds
 * while a service starts, and the resident agent links no HTTP library
 * (lazylib.h). What the service sends is capped at HTTP_ANSWER_MAX and
 * parsed by health_http_parse (fuzzed: tests/fuzz/fuzz_health_http.c). */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "health.h"

/* The Content-Length of the headers in buf[0..hdr_len), or -1. */
static long long content_length(const char *buf, size_t hdr_len)
{
	static const char name[] = "\ncontent-length:";
	long long v = -1;

	for (size_t i = 0; i + sizeof(name) - 1 <= hdr_len; i++) {
		size_t j = 0, k;

		while (j < sizeof(name) - 1 && (buf[i + j] | 0x20) == (name[j] | 0x20))
			j++;
		if (j < sizeof(name) - 1)
			continue;
		for (k = i + j; k < hdr_len && buf[k] == ' '; k++)
			;
		for (v = 0; k < hdr_len && buf[k] >= '0' && buf[k] <= '9' && v < (1LL << 40); k++)
			v = v * 10 + (buf[k] - '0');
		return v;
	}
	return v;
}

bool health_http_complete(const char *buf, size_t len)
{
	unsigned st;
	size_t body;
	long long cl;

	if (health_http_parse(buf, len, &st, &body) != DRV_OK || body == len)
		return false;
	cl = content_length(buf, body);
	return cl >= 0 && len - body >= (size_t)cl;
}

int health_http_parse(const char *buf, size_t len, unsigned *status, size_t *body_off)
{
	const char *end = len >= 4 ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
	unsigned st = 0;
	size_t i = 0;

	if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[7] < '0' || buf[7] > '9' ||
	    buf[8] != ' ')
		return DRV_EDECODE;
	for (i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return DRV_EDECODE;
		st = st * 10 + (unsigned)(buf[i] - '0');
	}
	if (st < 100 || (len > 12 && buf[12] != ' ' && buf[12] != '\r'))
		return DRV_EDECODE;
	*status = st;
	*body_off = end != NULL ? (size_t)(end - buf) + 4 : len; /* no body seen */
	return DRV_OK;
}

/* Connected to host:port within the time left; -1 with *why. */
static int dial(const char *host, uint32_t port, int64_t until, const char **why)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	char p[16];
	int fd, err = 0;
	socklen_t len = sizeof(err);

	snprintf(p, sizeof(p), "%u", port);
	if (getaddrinfo(host, p, &hints, &ai) != 0 || ai == NULL)
		return *why = "cannot resolve", -1;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		struct pollfd pf = {.fd = fd, .events = POLLOUT};
		int64_t left = until - drv_mono_ms();

		if (errno != EINPROGRESS || left <= 0 || poll(&pf, 1, (int)left) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
			*why = err                    ? strerror(err)
			       : errno != EINPROGRESS ? strerror(errno)
			                              : "timeout";
			close(fd);
			fd = -1;
		}
	} else if (fd < 0) {
		*why = strerror(errno);
	}
	freeaddrinfo(ai);
	return fd;
}

/* Send the request, read the answer (up to cap) until the peer closes. */
static int exchange(int fd, const char *req, size_t req_len, char *buf, size_t cap, size_t *got,
                    int64_t until, const char **why)
{
	size_t off = 0, n = 0;

	while (off < req_len || n < cap) {
		struct pollfd pf = {.fd = fd, .events = off < req_len ? POLLOUT : POLLIN};
		int64_t left = until - drv_mono_ms();
		ssize_t k;

		if (left <= 0 || poll(&pf, 1, (int)left) != 1)
			return *why = "timeout", DRV_ETIMEDOUT;
		if (off < req_len) {
			k = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
			if (k < 0 && errno != EAGAIN && errno != EINTR)
				return *why = strerror(errno), DRV_EIO;
			off += k > 0 ? (size_t)k : 0;
			continue;
		}
		k = recv(fd, buf + n, cap - n, 0);
		if (k == 0)
			break;
		if (k < 0 && errno != EAGAIN && errno != EINTR)
			return *why = strerror(errno), DRV_EIO;
		n += k > 0 ? (size_t)k : 0;
		if (health_http_complete(buf, n))
			break; /* all it announced: a server that keeps the connection */
	}
	*got = n; /* at cap: the rest is ignored, not an error */
	return DRV_OK;
}

static bool probe(const Drover__HealthCheck *hc, const struct health_target *t, uint32_t timeout_ms,
                  char *detail, size_t size)
{
	const char *host = t->host && t->host[0] ? t->host : "127.0.0.1";
	const char *path = hc->path && hc->path[0] ? hc->path : "/";
	uint32_t lo = hc->status_min ? hc->status_min : 200;
	uint32_t hi = hc->status_max ? hc->status_max : 299;
	int64_t until = drv_mono_ms() + timeout_ms;
	char req[700], *buf = malloc(HTTP_ANSWER_MAX + 1);
	const char *why = "", *slash = path[0] == '/' ? "" : "/";
	unsigned status = 0;
	size_t got = 0, body = 0;
	int fd, n;
	bool ok = false;

	n = snprintf(req, sizeof(req),
	             "GET %s%s HTTP/1.0\r\nHost: %s:%u\r\nUser-Agent: drover-agent/health\r\n"
	             "Connection: close\r\n\r\n",
	             slash, path, host, t->port);
	if (buf == NULL || n < 0 || (size_t)n >= sizeof(req) || strpbrk(path, " \r\n") != NULL) {
		snprintf(detail, size, "http: %s", buf == NULL ? "out of memory" : "bad path");
		free(buf);
		return false;
	}
	fd = dial(host, t->port, until, &why);
	if (fd >= 0 &&
	    exchange(fd, req, (size_t)n, buf, HTTP_ANSWER_MAX, &got, until, &why) == DRV_OK &&
	    health_http_parse(buf, got, &status, &body) != DRV_OK)
		why = "not an HTTP answer";
	if (fd >= 0)
		close(fd);
	if (status == 0) {
		snprintf(detail, size, "GET http://%s:%u%s%s: %s", host, t->port, slash, path, why);
		free(buf);
		return false;
	}
	buf[got] = '\0';
	ok = status >= lo && status <= hi;
	if (ok && hc->body_match && hc->body_match[0] &&
	    strstr(buf + body, hc->body_match) == NULL) {
		snprintf(detail, size, "GET http://%s:%u%s%s: %u but the body lacks \"%.60s\"",
		         host, t->port, slash, path, status, hc->body_match);
		ok = false;
	} else {
		snprintf(detail, size, "GET http://%s:%u%s%s: %u%s", host, t->port, slash, path,
		         status, ok ? "" : " (outside the range)");
	}
	free(buf);
	return ok;
}

const struct health_kind_ops health_http_ops = {.name = "http", .probe = probe};
