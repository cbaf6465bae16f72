/*
 * sdnotify.c: the sd_notify datagram protocol, spoken directly.
 *
 * One socket per call: notifications are rare (start, stop, status), so
 * keeping a descriptor open across fork/exec of supervised children is not
 * worth it.
 */
#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "err.h"

/* Fill addr from a NOTIFY_SOCKET value: "/path" or "@abstract". */
static int notify_addr(const char *spec, struct sockaddr_un *addr, socklen_t *len)
{
	size_t n = strlen(spec);

	if (n < 2 || n >= sizeof(addr->sun_path) || (spec[0] != '/' && spec[0] != '@'))
		return DRV_EINVAL;
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	memcpy(addr->sun_path, spec, n);
	if (spec[0] == '@')
		addr->sun_path[0] = '\0'; /* abstract: no NUL terminator counted */
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (spec[0] == '/'));
	return DRV_OK;
}

static int send_state(const struct sockaddr_un *addr, socklen_t alen, const char *state)
{
	int fd, rc = DRV_OK;
	size_t n = strlen(state);
	ssize_t w;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return DRV_ESYS;
	do {
		w = sendto(fd, state, n, MSG_NOSIGNAL, (const struct sockaddr *)addr, alen);
	} while (w < 0 && errno == EINTR);
	if (w < 0 || (size_t)w != n)
		rc = DRV_ESYS;
	close(fd);
	return rc;
}

int drv_sd_notify(const char *state)
{
	const char *spec = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr;
	socklen_t alen;

	if (state == NULL || state[0] == '\0' || strlen(state) > DRV_SD_NOTIFY_MAX)
		return DRV_EINVAL;
	if (spec == NULL || spec[0] == '\0')
		return DRV_OK;
	if (notify_addr(spec, &addr, &alen) != DRV_OK)
		return DRV_EINVAL;
	return send_state(&addr, alen, state);
}

int drv_sd_notifyf(const char *fmt, ...)
{
	char buf[DRV_SD_NOTIFY_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return DRV_EINVAL;
	return drv_sd_notify(buf);
}
