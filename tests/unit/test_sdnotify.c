/* test_sdnotify.c: sd_notify datagrams reach a real AF_UNIX socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "err.h"
#include "sdnotify.h"

static char dir[] = "/tmp/drv-sdn-XXXXXX";
static char sockpath[128];

static int setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(sockpath, sizeof(sockpath), "%s/notify", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(sockpath);
	unsetenv("NOTIFY_SOCKET");
	return rmdir(dir);
}

/* A bound datagram socket standing in for systemd's notify socket. name is a
 * path, or "@x" for the abstract namespace. */
static int listener(const char *name)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memcpy(a.sun_path, name, n);
	if (name[0] == '@')
		a.sun_path[0] = '\0';
	else
		len++;
	assert_int_equal(bind(fd, (struct sockaddr *)&a, len), 0);
	return fd;
}

/* Receive one datagram within a bounded wait; returns its length. */
static ssize_t receive(int fd, char *buf, size_t cap)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;

	assert_int_equal(poll(&p, 1, 5000), 1);
	n = recv(fd, buf, cap - 1, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
	return n;
}

static void ready_reaches_path_socket(void **state)
{
	(void)state;
	char buf[2048];
	int fd = listener(sockpath);

	setenv("NOTIFY_SOCKET", sockpath, 1);
	assert_int_equal(drv_sd_notify("READY=1"), DRV_OK);
	assert_int_equal(receive(fd, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "READY=1");
	assert_int_equal(drv_sd_notify("READY=1\nSTATUS=serving 3 agents"), DRV_OK);
	receive(fd, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1\nSTATUS=serving 3 agents");
	close(fd);
	unlink(sockpath);
}

static void abstract_socket(void **state)
{
	(void)state;
	char name[64], buf[2048];
	int fd;

	snprintf(name, sizeof(name), "@drv-sdn-test-%ld", (long)getpid());
	fd = listener(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(drv_sd_notifyf("STATUS=%d of %d", 2, 5), DRV_OK);
	receive(fd, buf, sizeof(buf));
	assert_string_equal(buf, "STATUS=2 of 5");
	close(fd);
}

static void no_socket_is_a_noop(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(drv_sd_notify("READY=1"), DRV_OK);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(drv_sd_notify("STOPPING=1"), DRV_OK);
}

static void bad_input(void **state)
{
	(void)state;
	char big[DRV_SD_NOTIFY_MAX + 2];

	setenv("NOTIFY_SOCKET", sockpath, 1);
	assert_int_equal(drv_sd_notify(NULL), DRV_EINVAL);
	assert_int_equal(drv_sd_notify(""), DRV_EINVAL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(drv_sd_notify(big), DRV_EINVAL);
	assert_int_equal(drv_sd_notifyf("%s", big), DRV_EINVAL);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(drv_sd_notify("READY=1"), DRV_EINVAL);
	setenv("NOTIFY_SOCKET", "@", 1);
	assert_int_equal(drv_sd_notify("READY=1"), DRV_EINVAL);
}

static void nobody_listening(void **state)
{
	(void)state;
	/* The path does not exist: the send fails and says so. */
	setenv("NOTIFY_SOCKET", sockpath, 1);
	assert_int_equal(drv_sd_notify("READY=1"), DRV_ESYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(ready_reaches_path_socket), cmocka_unit_test(abstract_socket),
	        cmocka_unit_test(no_socket_is_a_noop),       cmocka_unit_test(bad_input),
	        cmocka_unit_test(nobody_listening),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
