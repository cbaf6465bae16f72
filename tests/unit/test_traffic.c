/*
 * test_traffic: the traffic registry, the checks in front of every kind,
 * and the "command" kind with real commands (/bin/sh).
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "traffic_conf.h"
#include "traffic_int.h"

static char dir[64];
static char out_path[128];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/drv-ttr.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(out_path, sizeof(out_path), "%s/args", dir);
	return 0;
}

static int teardown(void **state)
{
	char p[160];

	unlink(out_path);
	snprintf(p, sizeof(p), "%s/pid", dir);
	unlink(p);
	rmdir(dir);
	return 0;
}

/* A hook that writes its arguments, one per line, to out_path. */
static struct drv_traffic *open_recorder(void)
{
	static char script[256];
	const char *argv[] = {"/bin/sh", "-c", script, "hook", NULL};
	struct drv_traffic_config cfg = {.kind = "command", .argv = argv, .timeout_ms = 5000};
	struct drv_traffic *t;

	snprintf(script, sizeof(script), "printf '%%s\\n' \"$@\" > '%s'", out_path);
	assert_int_equal(drv_traffic_open(&cfg, &t), DRV_OK);
	assert_string_equal(drv_traffic_kind(t), "command");
	return t;
}

static void assert_recorded(const char *want)
{
	char buf[512];
	FILE *f = fopen(out_path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	assert_string_equal(buf, want);
	unlink(out_path);
}

static void test_registry(void **state)
{
	assert_non_null(drv_traffic_find("haproxy"));
	assert_non_null(drv_traffic_find("command"));
	assert_string_equal(drv_traffic_find("command")->kind, "command");
	assert_null(drv_traffic_find("nginx"));
	assert_null(drv_traffic_find(NULL));
}

static void test_open_errors(void **state)
{
	const char *empty[] = {NULL};
	struct drv_traffic_config unknown = {.kind = "nginx"};
	struct drv_traffic_config hx_nosock = {.kind = "haproxy"};
	struct drv_traffic_config hook_noargv = {.kind = "command"};
	struct drv_traffic_config hook_empty = {.kind = "command", .argv = empty};
	struct drv_traffic_config negative = {.kind = "haproxy", .socket = "/x", .timeout_ms = -1};
	struct drv_traffic *t = (struct drv_traffic *)1;

	assert_int_equal(drv_traffic_open(&unknown, &t), DRV_EINVAL);
	assert_int_equal(drv_traffic_open(&hx_nosock, &t), DRV_EINVAL);
	assert_int_equal(drv_traffic_open(&hook_noargv, &t), DRV_EINVAL);
	assert_int_equal(drv_traffic_open(&hook_empty, &t), DRV_EINVAL);
	assert_int_equal(drv_traffic_open(&negative, &t), DRV_EINVAL);
	assert_int_equal(drv_traffic_open(NULL, &t), DRV_EINVAL);
	assert_ptr_equal(t, (struct drv_traffic *)1);
	drv_traffic_close(NULL);
}

static void test_hook_operations(void **state)
{
	struct drv_traffic *t = open_recorder();
	struct drv_traffic_weight w[] = {{"ui-1", 10}, {"ui-2", 90}};
	const char *const green[] = {"ui-1-green", "ui-2-green"};
	const char *const one[] = {"ui-1"};

	assert_int_equal(drv_traffic_set_weights(t, "api", w, 2), DRV_OK);
	assert_recorded("weights\napi\nui-1=10\nui-2=90\n");
	assert_int_equal(drv_traffic_switch(t, "web", green, 2), DRV_OK);
	assert_recorded("switch\nweb\nui-1-green\nui-2-green\n");
	assert_int_equal(drv_traffic_set_state(t, "web", one, 1, DRV_TRAFFIC_DRAIN), DRV_OK);
	assert_recorded("state\nweb\ndrain\nui-1\n");
	assert_int_equal(drv_traffic_set_state(t, "web", one, 1, DRV_TRAFFIC_MAINT), DRV_OK);
	assert_recorded("state\nweb\nmaint\nui-1\n");
	assert_int_equal(drv_traffic_wait_up(t, "web", green, 2, 1500, NULL, 0), DRV_OK);
	assert_recorded("wait-up\nweb\n1500\nui-1-green\nui-2-green\n");
	drv_traffic_close(t);
}

static void test_validation(void **state)
{
	struct drv_traffic *t = open_recorder();
	struct drv_traffic_weight too_heavy[] = {{"a", 257}};
	struct drv_traffic_weight negative[] = {{"a", -1}};
	struct drv_traffic_weight bad_name[] = {{"a b", 1}};
	struct drv_traffic_weight no_name[] = {{NULL, 1}};
	const char *const bad[] = {"a;reboot"};
	const char *const ok[] = {"a"};
	const char **many = calloc(DRV_TRAFFIC_SERVERS_MAX + 1, sizeof(*many));
	size_t i;

	assert_non_null(many);
	for (i = 0; i <= DRV_TRAFFIC_SERVERS_MAX; i++)
		many[i] = "s";
	assert_int_equal(drv_traffic_set_weights(t, "api", too_heavy, 1), DRV_EINVAL);
	assert_int_equal(drv_traffic_set_weights(t, "api", negative, 1), DRV_EINVAL);
	assert_int_equal(drv_traffic_set_weights(t, "api", bad_name, 1), DRV_EINVAL);
	assert_int_equal(drv_traffic_set_weights(t, "api", no_name, 1), DRV_EINVAL);
	assert_int_equal(drv_traffic_set_weights(t, "api", too_heavy, 0), DRV_EINVAL);
	assert_int_equal(drv_traffic_set_weights(t, "a/b", negative, 0), DRV_EINVAL);
	assert_int_equal(drv_traffic_switch(t, "web", bad, 1), DRV_EINVAL);
	assert_int_equal(drv_traffic_switch(t, "", ok, 1), DRV_EINVAL);
	assert_int_equal(drv_traffic_switch(t, "web", ok, 0), DRV_EINVAL);
	assert_int_equal(drv_traffic_switch(t, "web", many, DRV_TRAFFIC_SERVERS_MAX + 1),
	                 DRV_EINVAL);
	assert_int_equal(drv_traffic_set_state(t, "web", ok, 1, (enum drv_traffic_state)7),
	                 DRV_EINVAL);
	assert_int_equal(drv_traffic_wait_up(t, "web", ok, 1, -5, NULL, 0), DRV_EINVAL);
	assert_int_equal(drv_traffic_switch(NULL, "web", ok, 1), DRV_EINVAL);
	/* Nothing ran. */
	assert_int_equal(access(out_path, F_OK), -1);
	free(many);
	drv_traffic_close(t);
}

static void test_hook_failure(void **state)
{
	const char *fails[] = {"/bin/sh", "-c", "exit 3", NULL};
	const char *missing[] = {"/nonexistent/drover-hook", NULL};
	struct drv_traffic_config cfg = {.kind = "command", .argv = fails};
	const char *const one[] = {"a"};
	struct drv_traffic *t;

	assert_int_equal(drv_traffic_open(&cfg, &t), DRV_OK);
	assert_int_equal(drv_traffic_switch(t, "web", one, 1), DRV_EIO);
	drv_traffic_close(t);
	cfg.argv = missing;
	assert_int_equal(drv_traffic_open(&cfg, &t), DRV_OK);
	assert_int_equal(drv_traffic_switch(t, "web", one, 1), DRV_EIO);
	drv_traffic_close(t);
}

/* True while PID exists and is not a zombie. */
static bool running(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p != NULL && p[1] == ' ' && p[2] != 'Z';
}

/* A hung hook is killed at the timeout, with what it started. */
static void test_hook_timeout(void **state)
{
	char script[256], pid_path[160], buf[32];
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	struct drv_traffic_config cfg = {.kind = "command", .argv = argv, .timeout_ms = 300};
	const char *const one[] = {"a"};
	struct drv_traffic *t;
	int64_t t0;
	FILE *f;
	pid_t child;
	int i;

	snprintf(pid_path, sizeof(pid_path), "%s/pid", dir);
	snprintf(script, sizeof(script), "sleep 30 & echo $! > '%s'; wait", pid_path);
	assert_int_equal(drv_traffic_open(&cfg, &t), DRV_OK);
	t0 = drv_mono_ms();
	assert_int_equal(drv_traffic_switch(t, "web", one, 1), DRV_ETIMEDOUT);
	assert_in_range(drv_mono_ms() - t0, 250, 3000);
	drv_traffic_close(t);

	f = fopen(pid_path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	child = (pid_t)atoi(buf);
	assert_true(child > 0);
	/* The sleep got SIGKILL with its group (a zombie until init reaps it). */
	for (i = 0; i < 100 && running(child); i++)
		usleep(20000);
	assert_false(running(child));
}

/* ---- droverd.yaml `balancers` (traffic_conf.c) ---- */

static int parse(const char *text, struct drv_traffic_balancers *b, struct drv_cfg_diag *d)
{
	memset(b, 0, sizeof(*b));
	memset(d, 0, sizeof(*d));
	return drv_traffic_balancers_parse(text, strlen(text), "droverd.yaml", "/etc/drover", b, d);
}

static bool diag_has(const struct drv_cfg_diag *d, const char *s)
{
	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->msg[i], s) != NULL)
			return true;
	return false;
}

static void test_balancers_read(void **state)
{
	const char *text = "api: 127.0.0.1:7780\n"
	                   "balancers:\n"
	                   "  edge: { kind: haproxy, socket: run/haproxy.sock }\n"
	                   "  dns:\n"
	                   "    kind: command\n"
	                   "    argv: [/usr/local/bin/lb-switch, --env, prod]\n"
	                   "    timeout: 2s\n";
	const struct drv_traffic_balancer *e, *d;
	struct drv_traffic_balancers b;
	struct drv_traffic_config cfg;
	struct drv_cfg_diag diag;

	(void)state;
	assert_int_equal(parse(text, &b, &diag), DRV_OK);
	assert_int_equal(b.n, 2);
	e = drv_traffic_balancer_find(&b, "edge");
	d = drv_traffic_balancer_find(&b, "dns");
	assert_non_null(e);
	assert_non_null(d);
	assert_null(drv_traffic_balancer_find(&b, "nope"));
	assert_string_equal(e->kind, "haproxy");
	assert_string_equal(e->socket, "/etc/drover/run/haproxy.sock"); /* against the file's dir */
	assert_int_equal(e->timeout_ms, 10000);
	assert_string_equal(d->argv[0], "/usr/local/bin/lb-switch");
	assert_string_equal(d->argv[2], "prod");
	assert_null(d->argv[3]);
	assert_int_equal(d->timeout_ms, 2000);
	drv_traffic_balancer_config(d, &cfg);
	assert_string_equal(cfg.kind, "command");
	assert_ptr_equal(cfg.argv, d->argv);
	drv_traffic_balancers_free(&b);
	/* none at all is fine */
	assert_int_equal(parse("api: 127.0.0.1:1\n", &b, &diag), DRV_OK);
	assert_int_equal(b.n, 0);
}

static void test_balancers_errors(void **state)
{
	const char *text = "balancers:\n"
	                   "  a: { kind: haproxy }\n"                          /* 2 */
	                   "  b: { kind: command, argv: [sh, -c, x] }\n"       /* 3 */
	                   "  c: { kind: ssh, socket: /x }\n"                  /* 4 */
	                   "  d: { kind: haproxy, socket: /s, argv: [/x] }\n"  /* 5 */
	                   "  e: { kind: command, argv: [/x], timeout: 1h }\n" /* 6 */
	                   "  f: { kind: command, argv: [/x], user: root }\n"  /* 7 */
	                   "  \"g h\": { kind: command, argv: [/x] }\n";       /* 8 */
	struct drv_traffic_balancers b;
	struct drv_cfg_diag diag;

	(void)state;
	assert_int_equal(parse(text, &b, &diag), DRV_EINVAL);
	assert_int_equal(b.n, 0);
	assert_true(
	        diag_has(&diag, "droverd.yaml:2: balancers.a: a haproxy balancer needs socket"));
	assert_true(diag_has(&diag, "droverd.yaml:3: balancers.b.argv: the command must be an "
	                            "absolute path"));
	assert_true(
	        diag_has(&diag, "droverd.yaml:4: balancers.c.kind: must be haproxy or command"));
	assert_true(diag_has(&diag, "droverd.yaml:5: balancers.d.argv: not a field of a haproxy"));
	assert_true(diag_has(&diag, "droverd.yaml:6: balancers.e.timeout: must be a duration"));
	assert_true(diag_has(&diag, "droverd.yaml:7: balancers.f.user: unknown field"));
	assert_true(diag_has(&diag, "droverd.yaml:8: balancers.g h: a balancer's name is"));
	assert_int_equal(parse("balancers: [a, b]\n", &b, &diag), DRV_EINVAL);
	assert_true(diag_has(&diag, "droverd.yaml:1: balancers: must be a mapping"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_registry),        cmocka_unit_test(test_open_errors),
	        cmocka_unit_test(test_hook_operations), cmocka_unit_test(test_validation),
	        cmocka_unit_test(test_hook_failure),    cmocka_unit_test(test_hook_timeout),
	        cmocka_unit_test(test_balancers_read),  cmocka_unit_test(test_balancers_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
