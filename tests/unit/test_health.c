/* test_health.c: damping of health results (agent/health.c), pure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "health.h"

static void thresholds(void **state)
{
	struct health_damper d;
	int64_t prev = -1;
	(void)state;
	health_damper_init(&d, 1000);
	assert_int_equal(d.state, HEALTH_UNKNOWN);
	assert_false(health_damper_feed(&d, true, 2, 3, 1100, &prev));
	assert_true(health_damper_feed(&d, true, 2, 3, 1200, &prev)); /* 2 in a row */
	assert_int_equal(d.state, HEALTH_UP);
	assert_int_equal(prev, 200); /* unknown lasted 200 ms */
	/* Two failures, a success, two failures: never 3 in a row. */
	assert_false(health_damper_feed(&d, false, 2, 3, 1300, &prev));
	assert_false(health_damper_feed(&d, false, 2, 3, 1400, &prev));
	assert_false(health_damper_feed(&d, true, 2, 3, 1500, &prev));
	assert_false(health_damper_feed(&d, false, 2, 3, 1600, &prev));
	assert_false(health_damper_feed(&d, false, 2, 3, 1700, &prev));
	assert_int_equal(d.state, HEALTH_UP);
	assert_true(health_damper_feed(&d, false, 2, 3, 1800, &prev));
	assert_int_equal(d.state, HEALTH_DOWN);
	assert_int_equal(prev, 600); /* healthy from 1200 to 1800 */
	/* One success is not enough to come back. */
	assert_false(health_damper_feed(&d, true, 2, 3, 1900, &prev));
	assert_false(health_damper_feed(&d, false, 2, 3, 2000, &prev));
	assert_false(health_damper_feed(&d, true, 2, 3, 2100, &prev));
	assert_true(health_damper_feed(&d, true, 2, 3, 2200, &prev));
	assert_int_equal(prev, 400);
}

static void zero_thresholds_mean_one(void **state)
{
	struct health_damper d;
	int64_t prev;
	(void)state;
	health_damper_init(&d, 0);
	assert_true(health_damper_feed(&d, false, 0, 0, 10, &prev));
	assert_int_equal(d.state, HEALTH_DOWN);
	assert_true(health_damper_feed(&d, true, 0, 0, 20, &prev));
	assert_int_equal(d.state, HEALTH_UP);
}

static void defaults(void **state)
{
	struct health_params p;
	Drover__HealthCheck hc = DROVER__HEALTH_CHECK__INIT;
	(void)state;
	health_params_of(NULL, &p);
	assert_int_equal(p.interval_ms, 1000);
	assert_int_equal(p.timeout_ms, 2000);
	assert_int_equal(p.healthy_threshold, 2);
	assert_int_equal(p.unhealthy_threshold, 3);
	assert_int_equal(p.deadline_ms, 60000);
	hc.interval_ms = 50;
	hc.unhealthy_threshold = 7;
	health_params_of(&hc, &p);
	assert_int_equal(p.interval_ms, 50);
	assert_int_equal(p.unhealthy_threshold, 7);
	assert_int_equal(p.healthy_threshold, 2);
	assert_null(health_kind_find(DROVER__HEALTH_KIND__HEALTH_NONE));
	assert_string_equal(health_kind_find(DROVER__HEALTH_KIND__HEALTH_TCP)->name, "tcp");
	assert_string_equal(health_kind_find(DROVER__HEALTH_KIND__HEALTH_EXEC)->name, "exec");
	assert_string_equal(health_kind_find(DROVER__HEALTH_KIND__HEALTH_HTTP)->name, "http");
}

static struct health_params sched_params(uint32_t interval, uint32_t up, uint32_t down)
{
	struct health_params p;

	health_params_of(NULL, &p);
	p.interval_ms = interval;
	p.healthy_threshold = up;
	p.unhealthy_threshold = down;
	return p;
}

/* Fail at once and back off 10, 20, 40 ... up to the interval. */
static void sched_backoff(void **state)
{
	struct health_params p = sched_params(1000, 2, 3);
	struct health_sched s;
	int64_t prev, t = 5000;
	const int64_t want[] = {10, 20, 40, 80, 160, 320, 640, 1000, 1000};
	(void)state;
	health_sched_init(&s, &p, t);
	assert_int_equal(s.next_at, t); /* no initial delay: probe at once */
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		t = s.next_at;
		health_sched_feed(&s, &p, false, t, &prev);
		assert_int_equal(s.next_at - t, want[i]);
	}
	p.initial_delay_ms = 300;
	health_sched_init(&s, &p, 100);
	assert_int_equal(s.next_at, 400);
}

/* healthy_threshold successes in a row, an interval apart; a failure breaks the run. */
static void sched_threshold_exact(void **state)
{
	struct health_params p = sched_params(1000, 3, 3);
	struct health_sched s;
	int64_t prev = -1, t = 0;
	(void)state;
	health_sched_init(&s, &p, 0);
	assert_false(health_sched_feed(&s, &p, false, 0, &prev)); /* 1st failure counted */
	assert_int_equal(s.next_at, 10);
	assert_false(health_sched_feed(&s, &p, true, 10, &prev));
	assert_int_equal(s.next_at, 1010); /* confirmations: an interval apart */
	assert_false(health_sched_feed(&s, &p, true, 1010, &prev));
	assert_false(health_sched_feed(&s, &p, false, 2010, &prev)); /* run broken */
	assert_int_equal(s.d.ok_run, 0);
	assert_int_equal(s.d.state, HEALTH_UNKNOWN);
	assert_int_equal(s.next_at, 2020); /* fast again */
	t = s.next_at;
	assert_false(health_sched_feed(&s, &p, true, t, &prev));
	assert_false(health_sched_feed(&s, &p, true, t + 1000, &prev));
	assert_true(health_sched_feed(&s, &p, true, t + 2000, &prev)); /* 3 in a row */
	assert_int_equal(s.d.state, HEALTH_UP);
	assert_int_equal(prev, t + 2000);
	assert_int_equal(s.next_at, t + 3000); /* healthy: at the interval */
}

/* A process that answers at once and dies 100 ms later (interval 150 ms,
 * threshold 2) is never healthy: the confirmation waits for the interval. */
static void sched_crash_after_start(void **state)
{
	struct health_params p = sched_params(150, 2, 2);
	struct health_sched s;
	int64_t prev;
	(void)state;
	health_sched_init(&s, &p, 0);
	assert_false(health_sched_feed(&s, &p, true, 0, &prev));
	assert_true(s.next_at >= 100);
	for (int i = 0; i < 20; i++)
		health_sched_feed(&s, &p, s.next_at < 100, s.next_at, &prev);
	assert_int_not_equal(s.d.state, HEALTH_UP);
}

/* A service healthy 30 ms after its start counts as healthy within one
 * fast step of that (threshold 1), not after an interval. */
static void sched_healthy_fast(void **state)
{
	struct health_params p = sched_params(1000, 1, 3);
	struct health_sched s;
	int64_t prev;
	(void)state;
	health_sched_init(&s, &p, 0);
	while (!health_sched_feed(&s, &p, s.next_at >= 30, s.next_at, &prev))
		assert_true(s.next_at <= 1000);
	assert_int_equal(s.d.state, HEALTH_UP);
	assert_true(prev >= 30 && prev <= 70);
}

/* Before the first success, fast failures count toward unhealthy_threshold
 * no more often than once an interval: unhealthy no sooner than before. */
static void sched_unhealthy_not_sooner(void **state)
{
	struct health_params p = sched_params(100, 2, 3);
	struct health_sched s;
	int64_t prev, t = 0;
	(void)state;
	health_sched_init(&s, &p, 0);
	for (;;) {
		t = s.next_at;
		if (health_sched_feed(&s, &p, false, t, &prev))
			break;
		assert_true(t < 1000);
	}
	assert_int_equal(s.d.state, HEALTH_DOWN);
	assert_true(t >= 200); /* failures counted at 0, >= 100, >= 200 */
	/* once healthy, the unhealthy side is the plain damper at the interval */
	health_sched_feed(&s, &p, true, t + 100, &prev);
	assert_true(health_sched_feed(&s, &p, true, s.next_at, &prev));
	t = s.next_at;
	assert_int_equal(s.d.state, HEALTH_UP);
	assert_false(health_sched_feed(&s, &p, false, t, &prev));
	assert_int_equal(s.next_at, t + 100);
	assert_false(health_sched_feed(&s, &p, false, t + 100, &prev));
	assert_true(health_sched_feed(&s, &p, false, t + 200, &prev));
	assert_int_equal(s.d.state, HEALTH_DOWN);
	assert_int_equal(s.next_at, t + 300); /* no fast probes after a fall */
}

static void http_parse(void **state)
{
	unsigned st = 0;
	size_t body = 0;
	const char *a = "HTTP/1.1 204 No Content\r\nX: y\r\n\r\nhi";
	(void)state;
	assert_int_equal(health_http_parse(a, strlen(a), &st, &body), DRV_OK);
	assert_int_equal(st, 204);
	assert_string_equal(a + body, "hi");
	assert_int_equal(health_http_parse("HTTP/1.0 200\r\n", 14, &st, &body), DRV_OK);
	assert_int_equal(body, 14); /* headers not ended: no body */
	assert_int_not_equal(health_http_parse("HTTP/1.0 2x0 OK\r\n", 17, &st, &body), DRV_OK);
	assert_int_not_equal(health_http_parse("HTTP/2.0 200 OK\r\n", 17, &st, &body), DRV_OK);
	assert_int_not_equal(health_http_parse("SSH-2.0-OpenSSH", 15, &st, &body), DRV_OK);
	assert_int_not_equal(health_http_parse("HTTP/1.1 099 x\r\n", 16, &st, &body), DRV_OK);
	assert_int_not_equal(health_http_parse("HTTP/1.1 2000\r\n", 15, &st, &body), DRV_OK);
	assert_int_not_equal(health_http_parse("HTTP/1.1", 8, &st, &body), DRV_OK);
	/* complete: the body its Content-Length announced has arrived */
	const char *c1 = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab";
	const char *c2 = "HTTP/1.1 200 OK\r\ncontent-length:3\r\n\r\nabc";
	const char *c3 = "HTTP/1.1 200 OK\r\n\r\nabc";
	assert_false(health_http_complete(c1, strlen(c1)));
	assert_true(health_http_complete(c2, strlen(c2)));
	assert_false(health_http_complete(c3, strlen(c3)));
}

/* A one-shot HTTP server on loopback: answers each connection with the
 * text given, then keeps it open (keep) or closes it. */
struct srv {
	int lfd;
	const char *answer;
	bool keep;
	int conns;
};

static void *serve(void *arg)
{
	struct srv *s = arg;
	char buf[1024];

	for (int i = 0; i < s->conns; i++) {
		int fd = accept(s->lfd, NULL, NULL);
		ssize_t n = fd >= 0 ? recv(fd, buf, sizeof(buf), 0) : -1;

		if (n > 0 && send(fd, s->answer, strlen(s->answer), MSG_NOSIGNAL) < 0)
			n = -1;
		while (s->keep && n > 0) /* until the probe closes (it must not wait for us) */
			n = recv(fd, buf, sizeof(buf), 0);
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

static bool probe_once(const char *answer, bool keep, const char *body_match, char *detail)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	struct srv s = {socket(AF_INET, SOCK_STREAM, 0), answer, keep, 1};
	Drover__HealthCheck hc = DROVER__HEALTH_CHECK__INIT;
	struct health_target t = {0};
	pthread_t th;
	bool ok;

	assert_true(s.lfd >= 0);
	assert_int_equal(bind(s.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s.lfd, 4), 0);
	assert_int_equal(getsockname(s.lfd, (struct sockaddr *)&a, &len), 0);
	t.port = ntohs(a.sin_port);
	hc.path = "/health";
	hc.body_match = (char *)body_match;
	assert_int_equal(pthread_create(&th, NULL, serve, &s), 0);
	ok = health_http_ops.probe(&hc, &t, 2000, detail, HEALTH_DETAIL_MAX);
	pthread_join(th, NULL);
	close(s.lfd);
	return ok;
}

/* The probe without libcurl, against a real socket. */
static void http_probe(void **state)
{
	char d[HEALTH_DETAIL_MAX];
	(void)state;
	assert_true(probe_once("HTTP/1.0 200 OK\r\n\r\nok", false, NULL, d));
	assert_non_null(strstr(d, ": 200"));
	assert_true(probe_once("HTTP/1.1 200 OK\r\n\r\nstatus: ready", false, "ready", d));
	assert_false(probe_once("HTTP/1.1 200 OK\r\n\r\nstatus: starting", false, "ready", d));
	assert_non_null(strstr(d, "body lacks"));
	assert_false(probe_once("HTTP/1.1 503 Busy\r\n\r\n", false, NULL, d));
	assert_non_null(strstr(d, "outside the range"));
	assert_false(probe_once("hello\r\n", false, NULL, d));
	assert_non_null(strstr(d, "not an HTTP answer"));
	/* a server that keeps the connection: done at its Content-Length */
	assert_true(probe_once("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true, NULL, d));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(thresholds),
	        cmocka_unit_test(http_parse),
	        cmocka_unit_test(http_probe),
	        cmocka_unit_test(zero_thresholds_mean_one),
	        cmocka_unit_test(defaults),
	        cmocka_unit_test(sched_backoff),
	        cmocka_unit_test(sched_threshold_exact),
	        cmocka_unit_test(sched_healthy_fast),
	        cmocka_unit_test(sched_crash_after_start),
	        cmocka_unit_test(sched_unhealthy_not_sooner),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
