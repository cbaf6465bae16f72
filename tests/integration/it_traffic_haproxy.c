/*
 * it_traffic_haproxy: the traffic client against a real HAProxy.
 *
 * Starts, on 127.0.0.1 only: two berry-svc (servers "a" and "b" of backend
 * "web") and HAProxy with an admin socket in a temporary directory. Then
 * moves traffic with traffic.h (weights, blue-green switches, drain, maint)
 * and checks both what HAProxy reports ("show stat") and where real HTTP
 * requests through the frontend land. Kills only the PIDs it started.
 * Exits 77 when haproxy or berry-svc is missing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "traffic.h"
#include "traffic_haproxy.h"

extern char **environ;

static struct {
	char dir[64];
	char sock[128];
	int port_fe, port_a, port_b;
	pid_t pid_a, pid_b, pid_hx;
	struct drv_haproxy h;
	struct drv_traffic *t;
} F;

static const char *const SRV_A[] = {"a"};
static const char *const SRV_B[] = {"b"};
static const char *const SRV_AB[] = {"a", "b"};

static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd, port = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static pid_t spawn(const char *log, char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return rc == 0 ? pid : -1;
}

static void stop(pid_t *pid)
{
	int i;

	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	for (i = 0; i < 50 && waitpid(*pid, NULL, WNOHANG) == 0; i++)
		usleep(100000);
	if (i == 50) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	*pid = 0;
}

static pid_t start_berry(const char *name, int port)
{
	const char *bin = getenv("BERRY_SVC");
	char p[16], log[128];

	snprintf(p, sizeof(p), "%d", port);
	snprintf(log, sizeof(log), "%s/%s.log", F.dir, name);
	char *argv[] = {(char *)bin, "--name",        (char *)name, "--port",
	                p,           "--listen-addr", "127.0.0.1",  NULL};
	return spawn(log, argv);
}

static int write_config(const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fprintf(f,
	        "global\n\tstats socket %s mode 600 level admin\n\tnbthread 1\n"
	        "defaults\n\tmode http\n\ttimeout connect 2s\n\ttimeout client 10s\n"
	        "\ttimeout server 10s\n"
	        "frontend fe\n\tbind 127.0.0.1:%d\n\tdefault_backend web\n"
	        "backend web\n\tbalance roundrobin\n\toption httpchk GET /health\n"
	        "\tdefault-server inter 200ms fall 2 rise 2 weight 100\n"
	        "\tserver a 127.0.0.1:%d check\n\tserver b 127.0.0.1:%d check\n",
	        F.sock, F.port_fe, F.port_a, F.port_b);
	return fclose(f);
}

/* One HTTP/1.0 GET on 127.0.0.1:PORT; the body (trimmed) in BODY. */
static int http_get(int port, const char *path, char *body, size_t bodysz)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 5};
	char req[256], resp[4096], *b;
	size_t len = 0;
	ssize_t n;
	int fd, status = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: test\r\n\r\n", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
		goto out;
	while (len + 1 < sizeof(resp) && (n = recv(fd, resp + len, sizeof(resp) - 1 - len, 0)) > 0)
		len += (size_t)n;
	resp[len] = '\0';
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
		goto out;
	b = strstr(resp, "\r\n\r\n");
	snprintf(body, bodysz, "%s", b ? b + 4 : "");
	body[strcspn(body, "\r\n")] = '\0';
out:
	close(fd);
	return status;
}

/* Send N requests through the frontend; count where they land. */
static void distribute(int n, int *na, int *nb)
{
	char body[64];
	int i, st;

	*na = *nb = 0;
	for (i = 0; i < n; i++) {
		st = http_get(F.port_fe, "/name", body, sizeof(body));
		assert_int_equal(st, 200);
		if (strcmp(body, "a") == 0)
			(*na)++;
		else if (strcmp(body, "b") == 0)
			(*nb)++;
		else
			fail_msg("unexpected body '%s'", body);
	}
}

static char *stat_field(const char *server, const char *field)
{
	struct drv_haproxy_stat st;
	const char *v;
	char *out;

	assert_int_equal(drv_haproxy_stat(&F.h, "web", &st), DRV_OK);
	v = drv_haproxy_stat_get(&st, "web", server, field);
	assert_non_null(v);
	out = strdup(v);
	drv_haproxy_stat_free(&st);
	return out;
}

static void assert_stat(const char *server, const char *field, const char *want)
{
	char *v = stat_field(server, field);

	if (strcmp(v, want) != 0)
		fail_msg("show stat web/%s %s: want '%s', got '%s'", server, field, want, v);
	free(v);
}

static int wait_socket(void)
{
	struct drv_deadline dl = drv_deadline_in(10000);
	char *resp;
	size_t len;

	while (!drv_deadline_passed(dl, drv_mono_ms())) {
		if (waitpid(F.pid_hx, NULL, WNOHANG) != 0)
			return -1;
		if (access(F.sock, F_OK) == 0 &&
		    drv_haproxy_cmd(&F.h, "show info", &resp, &len) == 0) {
			free(resp);
			return 0;
		}
		usleep(50000);
	}
	return -1;
}

static int setup(void **state)
{
	struct drv_traffic_config cfg = {.kind = "haproxy"};
	char cfgpath[128], log[128];

	snprintf(F.dir, sizeof(F.dir), "/tmp/drv-ithx.XXXXXX");
	if (mkdtemp(F.dir) == NULL)
		return -1;
	snprintf(F.sock, sizeof(F.sock), "%s/admin.sock", F.dir);
	snprintf(cfgpath, sizeof(cfgpath), "%s/haproxy.cfg", F.dir);
	snprintf(log, sizeof(log), "%s/haproxy.log", F.dir);
	F.port_fe = free_port();
	F.port_a = free_port();
	F.port_b = free_port();
	if (F.port_fe < 0 || F.port_a < 0 || F.port_b < 0 || write_config(cfgpath) != 0)
		return -1;
	F.h.socket_path = F.sock;
	F.h.timeout_ms = 5000;
	F.pid_a = start_berry("a", F.port_a);
	F.pid_b = start_berry("b", F.port_b);
	char *argv[] = {"haproxy", "-db", "-f", cfgpath, NULL};
	F.pid_hx = spawn(log, argv);
	if (F.pid_a < 0 || F.pid_b < 0 || F.pid_hx < 0 || wait_socket() != 0) {
		fprintf(stderr, "it_traffic_haproxy: start-up failed; see %s\n", F.dir);
		return -1;
	}
	cfg.socket = F.sock;
	return drv_traffic_open(&cfg, &F.t) == DRV_OK ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[160];

	drv_traffic_close(F.t);
	stop(&F.pid_hx);
	stop(&F.pid_a);
	stop(&F.pid_b);
	if (F.dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", F.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "it_traffic_haproxy: could not remove %s\n", F.dir);
	}
	return 0;
}

static void test_wait_up(void **state)
{
	int64_t t0 = drv_mono_ms();

	assert_int_equal(drv_traffic_wait_up(F.t, "web", SRV_AB, 2, 10000, NULL, 0), DRV_OK);
	print_message("both servers UP after %lld ms\n", (long long)(drv_mono_ms() - t0));
	assert_stat("a", "status", "UP");
	assert_stat("b", "status", "UP");
}

static void test_weights_move_traffic(void **state)
{
	struct drv_traffic_weight only_a[] = {{"a", 100}, {"b", 0}};
	struct drv_traffic_weight canary[] = {{"a", 75}, {"b", 25}};
	struct drv_traffic_weight half[] = {{"a", 50}, {"b", 50}};
	int na, nb;

	assert_int_equal(drv_traffic_set_weights(F.t, "web", only_a, 2), DRV_OK);
	assert_stat("b", "weight", "0");
	distribute(20, &na, &nb);
	assert_int_equal(na, 20);
	assert_int_equal(nb, 0);

	assert_int_equal(drv_traffic_set_weights(F.t, "web", canary, 2), DRV_OK);
	assert_stat("a", "weight", "75");
	assert_stat("b", "weight", "25");
	distribute(200, &na, &nb);
	print_message("weights 75/25: a=%d b=%d of 200\n", na, nb);
	assert_in_range(nb, 40, 60);

	assert_int_equal(drv_traffic_set_weights(F.t, "web", half, 2), DRV_OK);
	distribute(100, &na, &nb);
	print_message("weights 50/50: a=%d b=%d of 100\n", na, nb);
	assert_in_range(nb, 40, 60);
}

static void test_switch_blue_green(void **state)
{
	int na, nb;

	assert_int_equal(drv_traffic_switch(F.t, "web", SRV_B, 1), DRV_OK);
	assert_stat("a", "status", "DRAIN");
	assert_stat("b", "status", "UP");
	assert_stat("b", "weight", "100");
	distribute(20, &na, &nb);
	assert_int_equal(nb, 20);

	/* Rollback: switch back. */
	assert_int_equal(drv_traffic_switch(F.t, "web", SRV_A, 1), DRV_OK);
	assert_stat("a", "status", "UP");
	assert_stat("b", "status", "DRAIN");
	distribute(20, &na, &nb);
	assert_int_equal(na, 20);
}

static void test_states(void **state)
{
	int na, nb;

	assert_int_equal(drv_traffic_set_state(F.t, "web", SRV_AB, 2, DRV_TRAFFIC_READY), DRV_OK);
	assert_int_equal(drv_traffic_set_state(F.t, "web", SRV_A, 1, DRV_TRAFFIC_MAINT), DRV_OK);
	assert_stat("a", "status", "MAINT");
	distribute(10, &na, &nb);
	assert_int_equal(nb, 10);
	assert_int_equal(drv_traffic_set_state(F.t, "web", SRV_A, 1, DRV_TRAFFIC_READY), DRV_OK);
	assert_int_equal(drv_traffic_wait_up(F.t, "web", SRV_A, 1, 10000, NULL, 0), DRV_OK);
	distribute(10, &na, &nb);
	assert_in_range(na, 4, 6);
}

/* b fails its health check: wait_up times out, a switch to it is refused. */
static void test_unhealthy(void **state)
{
	struct drv_haproxy_servers s;
	const struct drv_haproxy_server *sv;
	struct drv_deadline dl;
	char body[64], why[128];
	int64_t t0;
	int rc;

	assert_int_equal(http_get(F.port_b, "/fail", body, sizeof(body)), 200);
	dl = drv_deadline_in(10000);
	do {
		assert_false(drv_deadline_passed(dl, drv_mono_ms()));
		usleep(100000);
		assert_int_equal(drv_haproxy_servers(&F.h, "web", &s), DRV_OK);
		sv = drv_haproxy_servers_find(&s, "web", "b");
		assert_non_null(sv);
		rc = sv->op_state;
		drv_haproxy_servers_free(&s);
	} while (rc != DRV_HAPROXY_OP_STOPPED);
	assert_stat("b", "status", "DOWN");

	t0 = drv_mono_ms();
	assert_int_equal(drv_traffic_wait_up(F.t, "web", SRV_B, 1, 500, why, sizeof(why)),
	                 DRV_ETIMEDOUT);
	assert_in_range(drv_mono_ms() - t0, 450, 3000);
	/* what HAProxy reported: the last check's result, or a check running
	 * (HAProxy clears the result while a check is in progress) */
	if (strcmp(why, "b DOWN (a check is running)") != 0)
		assert_string_equal(why, "b DOWN (last check failed)");

	assert_int_equal(drv_traffic_switch(F.t, "web", SRV_B, 1), DRV_ESTATE);
	assert_stat("a", "status", "UP"); /* not drained */

	assert_int_equal(http_get(F.port_b, "/recover", body, sizeof(body)), 200);
	assert_int_equal(drv_traffic_wait_up(F.t, "web", SRV_B, 1, 10000, NULL, 0), DRV_OK);
}

static void test_errors(void **state)
{
	struct drv_traffic_weight bad_srv[] = {{"zz", 10}};
	struct drv_traffic_weight too_big[] = {{"a", 300}};
	struct drv_traffic_weight inject[] = {{"a weight 0; shutdown", 10}};
	struct drv_traffic_config cfg = {.kind = "haproxy", .socket = "/nonexistent/admin.sock"};
	const char *const zz[] = {"zz"};
	struct drv_traffic *t;
	char why[128];

	assert_int_equal(drv_traffic_set_weights(F.t, "web", bad_srv, 1), DRV_ENOENT);
	assert_int_equal(drv_traffic_set_weights(F.t, "nope", bad_srv, 1), DRV_ENOENT);
	assert_int_equal(drv_traffic_set_weights(F.t, "web", too_big, 1), DRV_EINVAL);
	assert_int_equal(drv_traffic_set_weights(F.t, "web", inject, 1), DRV_EINVAL);
	assert_int_equal(drv_traffic_wait_up(F.t, "web", zz, 1, 1000, why, sizeof(why)),
	                 DRV_ENOENT);
	assert_string_equal(why, "zz is not a server of backend web");
	assert_int_equal(drv_traffic_wait_up(F.t, "nope", SRV_A, 1, 1000, NULL, 0), DRV_ENOENT);
	assert_int_equal(drv_traffic_switch(F.t, "web", zz, 1), DRV_ENOENT);

	assert_int_equal(drv_traffic_open(&cfg, &t), DRV_OK);
	assert_int_equal(drv_traffic_wait_up(t, "web", SRV_A, 1, 200, NULL, 0), DRV_EIO);
	drv_traffic_close(t);
}

static bool have_haproxy(void)
{
	char *argv[] = {"haproxy", "-v", NULL};
	pid_t pid = spawn("/dev/null", argv);
	int st;

	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void)
{
	const char *bin = getenv("BERRY_SVC");
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_wait_up),
	        cmocka_unit_test(test_weights_move_traffic),
	        cmocka_unit_test(test_switch_blue_green),
	        cmocka_unit_test(test_states),
	        cmocka_unit_test(test_unhealthy),
	        cmocka_unit_test(test_errors),
	};

	signal(SIGPIPE, SIG_IGN);
	if (!have_haproxy()) {
		fprintf(stderr, "\n*** it_traffic_haproxy SKIPPED: haproxy is not installed "
		                "(make deps) ***\n\n");
		return 77;
	}
	if (bin == NULL || access(bin, X_OK) != 0) {
		fprintf(stderr, "\n*** it_traffic_haproxy SKIPPED: BERRY_SVC is not set to the "
		                "built berry-svc (run it through ctest) ***\n\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
