/*
 * test_traffic_haproxy: the HAProxy runtime API client's parsers (answers
 * captured from HAProxy 2.6), answer classification, name checks, and the
 * I/O bounds (timeout, size cap) against a real unix socket peer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "traffic_haproxy.h"

#define HDR                                                                                        \
	"# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "       \
	"srv_iweight srv_time_since_last_change srv_check_status srv_check_result "                \
	"srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "         \
	"srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "    \
	"srv_agent_port\n"

/* HAProxy 2.6: a UP with a passed check, b started (UP before any check). */
static const char SERVERS_START[] =
        "1\n" HDR "3 be 1 a 127.0.0.1 2 0 1 1 0 15 3 3 6 0 0 0 - 18701 - 0 0 - - 0\n"
        "3 be 2 b 127.0.0.1 2 0 1 1 0 1 0 2 6 0 0 0 - 18702 - 0 0 - - 0\n"
        "\n";
/* a drained, b down (check failed), c in maintenance (checks paused). */
static const char SERVERS_MIXED[] =
        "1\n" HDR "3 be 1 a 127.0.0.1 2 8 1 1 0 15 3 3 6 0 0 0 - 18701 - 0 0 - - 0\n"
        "3 be 2 b 127.0.0.1 0 0 1 1 2 8 2 0 6 0 0 0 - 18702 - 0 0 - - 0\n"
        "3 be 3 c 127.0.0.1 0 1 1 1 0 15 3 0 14 0 0 0 - 18703 - 0 0 - - 0\n"
        "\n";

#define STAT_HDR                                                                                   \
	"# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr," \
	"wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,"        \
	"throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,"              \
	"check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,"         \
	"req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,"      \
	"lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,"              \
	"agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,"      \
	"agent_fall,agent_health,addr,cookie,mode,algo,\n"

static const char STAT[] = STAT_HDR
        "be,a,0,0,0,0,,7,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,0,0,,1,3,1,,0,,2,0,,0,L7OK,200,0,0,0,"
        "0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,Layer7 check passed,,2,2,3,,,,127.0.0.1:18701,"
        ",http,,\n"
        "be,b,0,0,0,0,,12,0,0,,0,,0,0,0,0,DRAIN,0,1,0,1,1,2,2,,1,3,2,,0,,2,0,,0,L4CON,,0,0,0,"
        "0,0,0,0,,,,0,0,0,,,,,-1,\"Connection refused, \"\"twice\"\"\",,0,0,0,0,,,,Layer4 "
        "connection problem,,2,2,0,,,,127.0.0.1:18702,,http,,\n"
        "\n";

static void test_servers_parse(void **state)
{
	struct drv_haproxy_servers s;
	const struct drv_haproxy_server *a, *b;

	assert_int_equal(drv_haproxy_parse_servers(SERVERS_START, strlen(SERVERS_START), &s),
	                 DRV_OK);
	assert_int_equal(s.n, 2);
	a = drv_haproxy_servers_find(&s, "be", "a");
	b = drv_haproxy_servers_find(&s, NULL, "b");
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a->addr, "127.0.0.1");
	assert_int_equal(a->port, 18701);
	assert_int_equal(a->op_state, DRV_HAPROXY_OP_RUNNING);
	assert_int_equal(a->check_result, DRV_HAPROXY_CHK_PASSED);
	assert_int_equal(a->uweight, 1);
	assert_true(drv_haproxy_server_up(a));
	/* Running but never checked: not UP for us. */
	assert_int_equal(b->op_state, DRV_HAPROXY_OP_RUNNING);
	assert_false(drv_haproxy_server_up(b));
	assert_null(drv_haproxy_servers_find(&s, "other", "a"));
	drv_haproxy_servers_free(&s);
	drv_haproxy_servers_free(&s); /* idempotent */
}

static void test_servers_states(void **state)
{
	struct drv_haproxy_servers s;

	assert_int_equal(drv_haproxy_parse_servers(SERVERS_MIXED, strlen(SERVERS_MIXED), &s),
	                 DRV_OK);
	assert_int_equal(s.n, 3);
	assert_true(s.v[0].admin_state & DRV_HAPROXY_ADM_FDRAIN);
	assert_true(drv_haproxy_server_up(&s.v[0])); /* drained is still UP */
	assert_false(drv_haproxy_server_up(&s.v[1]));
	assert_int_equal(s.v[1].check_result, DRV_HAPROXY_CHK_FAILED);
	assert_true(s.v[2].admin_state & DRV_HAPROXY_ADM_MAINT);
	assert_false(drv_haproxy_server_up(&s.v[2]));
	drv_haproxy_servers_free(&s);
}

/* a DOWN after a failed check, b DOWN with its next check running (HAProxy
 * cleared the result: check_state 7 = in progress), c DOWN never checked,
 * d running with its check in progress. */
static const char SERVERS_CHECKING[] =
        "1\n" HDR "3 be 1 a 127.0.0.1 0 0 1 1 2 8 2 0 6 0 0 0 - 18701 - 0 0 - - 0\n"
        "3 be 2 b 127.0.0.1 0 0 1 1 2 8 0 0 7 0 0 0 - 18702 - 0 0 - - 0\n"
        "3 be 3 c 127.0.0.1 0 0 1 1 2 1 0 0 6 0 0 0 - 18703 - 0 0 - - 0\n"
        "3 be 4 d 127.0.0.1 2 0 1 1 9 15 0 3 7 0 0 0 - 18704 - 0 0 - - 0\n"
        "\n";

static void test_servers_why(void **state)
{
	struct drv_haproxy_servers s;
	char why[160] = "";
	size_t i;

	assert_int_equal(drv_haproxy_parse_servers(SERVERS_CHECKING, strlen(SERVERS_CHECKING), &s),
	                 DRV_OK);
	assert_int_equal(s.n, 4);
	for (i = 0; i < s.n; i++) {
		assert_false(drv_haproxy_server_up(&s.v[i])); /* d: no result to trust yet */
		drv_haproxy_why_not_up(why, sizeof(why), &s.v[i]);
	}
	assert_string_equal(why, "a DOWN (last check failed), b DOWN (a check is running), "
	                         "c DOWN (not checked yet), d running (a check is running)");
	drv_haproxy_why_not_up(why, 20, &s.v[0]); /* full: left as it is */
	assert_int_equal(strlen(why), 113);
	drv_haproxy_servers_free(&s);
}

static void test_servers_columns_by_name(void **state)
{
	/* Another column order and fewer columns (no checks): found by name. */
	static const char in[] = "1\n# srv_name be_name srv_uweight srv_iweight srv_op_state "
	                         "srv_admin_state\nx web 50 100 2 0\n";
	struct drv_haproxy_servers s;

	assert_int_equal(drv_haproxy_parse_servers(in, strlen(in), &s), DRV_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0].name, "x");
	assert_string_equal(s.v[0].backend, "web");
	assert_int_equal(s.v[0].uweight, 50);
	assert_int_equal(s.v[0].iweight, 100);
	assert_int_equal(s.v[0].port, -1);
	assert_string_equal(s.v[0].addr, "");
	assert_true(drv_haproxy_server_up(&s.v[0])); /* no check configured */
	drv_haproxy_servers_free(&s);
}

static void test_servers_empty_backend(void **state)
{
	static const char in[] = "1\n" HDR "\n";
	struct drv_haproxy_servers s;

	assert_int_equal(drv_haproxy_parse_servers(in, strlen(in), &s), DRV_OK);
	assert_int_equal(s.n, 0);
	drv_haproxy_servers_free(&s);
}

static void expect_servers_err(const char *in, int want)
{
	struct drv_haproxy_servers s = {.v = (void *)1, .n = 99};

	assert_int_equal(drv_haproxy_parse_servers(in, strlen(in), &s), want);
	/* Output untouched on failure. */
	assert_ptr_equal(s.v, (void *)1);
	assert_int_equal(s.n, 99);
}

static void test_servers_errors(void **state)
{
	expect_servers_err("", DRV_EDECODE);
	expect_servers_err("Can't find backend.\n", DRV_ENOENT);
	expect_servers_err("2\n" HDR, DRV_EVERSION);
	expect_servers_err("1\n", DRV_EDECODE);
	expect_servers_err("1\nbe_name srv_name\n", DRV_EDECODE);
	expect_servers_err("1\n# be_name srv_name\n", DRV_EDECODE); /* required columns missing */
	expect_servers_err("1\n" HDR "3 be 1 a\n", DRV_EDECODE);    /* short row */
	expect_servers_err("1\n" HDR "3 be 1 a 1.2.3.4 9 0 1 1 0 15 3 3 6 0 0 0 - 1 - 0 0 - - 0\n",
	                   DRV_EDECODE); /* op_state out of range */
	expect_servers_err("1\n" HDR
	                   "3 be 1 a 1.2.3.4 2 0 999 1 0 15 3 3 6 0 0 0 - 1 - 0 0 - - 0\n",
	                   DRV_EDECODE); /* weight out of range */
	expect_servers_err("1\n" HDR "3 be 1 a 1.2.3.4 2 0 1x 1 0 15 3 3 6 0 0 0 - 1 - 0 0 - - 0\n",
	                   DRV_EDECODE);
	expect_servers_err(
	        "1\n" HDR
	        "3 be 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
	        "1.2.3.4 2 0 1 1 0 15 3 3 6 0 0 0 - 1 - 0 0 - - 0\n",
	        DRV_EDECODE); /* 65-byte name */
}

static void test_servers_line_cap(void **state)
{
	size_t n = DRV_HAPROXY_LINE_MAX + 10;
	char *in = malloc(n + 16);
	struct drv_haproxy_servers s;

	assert_non_null(in);
	memcpy(in, "1\n", 2);
	memset(in + 2, 'x', n);
	assert_int_equal(drv_haproxy_parse_servers(in, n + 2, &s), DRV_ETOOBIG);
	free(in);
}

static void test_stat_parse(void **state)
{
	struct drv_haproxy_stat st;

	assert_int_equal(drv_haproxy_parse_stat(STAT, strlen(STAT), &st), DRV_OK);
	assert_int_equal(st.nrows, 2);
	assert_string_equal(st.cols[0], "pxname");
	assert_string_equal(st.cols[st.ncols - 1], "algo");
	assert_string_equal(drv_haproxy_stat_get(&st, "be", "a", "status"), "UP");
	assert_string_equal(drv_haproxy_stat_get(&st, "be", "a", "stot"), "7");
	assert_string_equal(drv_haproxy_stat_get(&st, "be", "a", "check_desc"),
	                    "Layer7 check passed");
	assert_string_equal(drv_haproxy_stat_get(&st, "be", "b", "status"), "DRAIN");
	assert_string_equal(drv_haproxy_stat_get(&st, "be", "b", "weight"), "0");
	assert_string_equal(drv_haproxy_stat_get(&st, "be", "b", "last_chk"),
	                    "Connection refused, \"twice\"");
	assert_string_equal(drv_haproxy_stat_get(&st, "be", "b", "cookie"), "");
	assert_null(drv_haproxy_stat_get(&st, "be", "c", "status"));
	assert_null(drv_haproxy_stat_get(&st, "be", "a", "nosuchfield"));
	drv_haproxy_stat_free(&st);
	drv_haproxy_stat_free(&st);
}

static void test_stat_short_rows(void **state)
{
	static const char in[] = "# pxname,svname,status,weight,\r\nweb,a,UP\r\nweb,b,MAINT,3,\r\n";
	struct drv_haproxy_stat st;

	assert_int_equal(drv_haproxy_parse_stat(in, strlen(in), &st), DRV_OK);
	assert_int_equal(st.ncols, 4);
	assert_string_equal(drv_haproxy_stat_get(&st, "web", "a", "weight"), "");
	assert_string_equal(drv_haproxy_stat_get(&st, "web", "b", "weight"), "3");
	drv_haproxy_stat_free(&st);
}

static void expect_stat_err(const char *in, size_t len, int want)
{
	struct drv_haproxy_stat st = {.nrows = 42};

	assert_int_equal(drv_haproxy_parse_stat(in, len, &st), want);
	assert_int_equal(st.nrows, 42);
}

static void test_stat_errors(void **state)
{
	expect_stat_err("", 0, DRV_EDECODE);
	expect_stat_err("\n\n", 2, DRV_EDECODE);
	expect_stat_err("No such proxy.\n", 15, DRV_ENOENT);
	expect_stat_err("Unknown command\n", 16, DRV_EDECODE);
	expect_stat_err("# a\n", 4, DRV_EDECODE);              /* one column */
	expect_stat_err("# a,b\nx,y,z,w\n", 14, DRV_EDECODE);  /* too many cells */
	expect_stat_err("# a,b\nx,\"y\n", 11, DRV_EDECODE);    /* open quote */
	expect_stat_err("# a,b\nx,\"y\"z\n", 13, DRV_EDECODE); /* junk after quote */
	expect_stat_err("# a,b\nx,y\0z\n", 12, DRV_EDECODE);   /* NUL */
}

static void test_stat_cell_cap(void **state)
{
	/* 1000 columns x many one-byte rows: capped by rows x columns. */
	size_t cols = 1000, rows = DRV_HAPROXY_STAT_CELLS / cols + 10, i, n = 0;
	char *in = malloc(cols * 2 + rows * 2 + 16);
	struct drv_haproxy_stat st;

	assert_non_null(in);
	in[n++] = '#';
	for (i = 0; i < cols; i++) {
		in[n++] = 'c';
		in[n++] = ',';
	}
	in[n++] = '\n';
	for (i = 0; i < rows; i++) {
		in[n++] = 'x';
		in[n++] = '\n';
	}
	assert_int_equal(drv_haproxy_parse_stat(in, n, &st), DRV_ETOOBIG);
	free(in);
}

static void test_check_empty(void **state)
{
	assert_int_equal(drv_haproxy_check_empty("", 0), DRV_OK);
	assert_int_equal(drv_haproxy_check_empty("\n", 1), DRV_OK);
	assert_int_equal(drv_haproxy_check_empty(" \r\n\n", 4), DRV_OK);
	assert_int_equal(drv_haproxy_check_empty("No such server.\n\n", 17), DRV_ENOENT);
	assert_int_equal(drv_haproxy_check_empty("No such backend.\n\n", 18), DRV_ENOENT);
	assert_int_equal(drv_haproxy_check_empty("Can't find backend.\n", 20), DRV_ENOENT);
	assert_int_equal(drv_haproxy_check_empty("Permission denied\n", 18), DRV_EPERM);
	assert_int_equal(drv_haproxy_check_empty(
	                         "Absolute weight can only be between 0 and 256 inclusive.\n", 58),
	                 DRV_EINVAL);
	assert_int_equal(drv_haproxy_check_empty("Unknown command\n", 16), DRV_EINVAL);
	assert_int_equal(drv_haproxy_check_empty(NULL, 0), DRV_EINVAL);
}

static void test_name_ok(void **state)
{
	char long_name[80];

	assert_true(drv_haproxy_name_ok("ui-1"));
	assert_true(drv_haproxy_name_ok("api_gateway.v2:8081"));
	assert_false(drv_haproxy_name_ok(""));
	assert_false(drv_haproxy_name_ok(NULL));
	assert_false(drv_haproxy_name_ok("a b"));
	assert_false(drv_haproxy_name_ok("a;shutdown"));
	assert_false(drv_haproxy_name_ok("a\nb"));
	assert_false(drv_haproxy_name_ok("a/b"));
	memset(long_name, 'x', 64);
	long_name[64] = '\0';
	assert_true(drv_haproxy_name_ok(long_name));
	long_name[64] = 'x';
	long_name[65] = '\0';
	assert_false(drv_haproxy_name_ok(long_name));
}

/* ---- I/O bounds against a real unix socket peer ---- */

enum peer_mode { PEER_SILENT, PEER_FLOOD, PEER_ANSWER };

struct peer {
	int lfd;
	enum peer_mode mode;
	char got[256];
	char path[108];
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	char buf[4096];
	ssize_t n;
	int fd, i;

	fd = accept(p->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	n = recv(fd, p->got, sizeof(p->got) - 1, 0);
	p->got[n > 0 ? n : 0] = '\0';
	if (p->mode == PEER_ANSWER) {
		send(fd, "1\n", 2, MSG_NOSIGNAL);
	} else if (p->mode == PEER_FLOOD) {
		memset(buf, 'x', sizeof(buf));
		for (i = 0; i < 64; i++)
			if (send(fd, buf, sizeof(buf), MSG_NOSIGNAL) < 0)
				break;
	} else {
		/* Say nothing until the client gives up and closes. */
		while (recv(fd, buf, sizeof(buf), 0) > 0)
			;
	}
	close(fd);
	return NULL;
}

static void peer_start(struct peer *p, pthread_t *th, enum peer_mode mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[] = "/tmp/drv-thx.XXXXXX";

	memset(p, 0, sizeof(*p));
	p->mode = mode;
	assert_non_null(mkdtemp(dir));
	snprintf(p->path, sizeof(p->path), "%s/s", dir);
	memcpy(sa.sun_path, p->path, strlen(p->path) + 1);
	p->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(p->lfd >= 0);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(p->lfd, 4), 0);
	assert_int_equal(pthread_create(th, NULL, peer_main, p), 0);
}

static void peer_stop(struct peer *p, pthread_t th)
{
	char *slash;

	pthread_join(th, NULL);
	close(p->lfd);
	unlink(p->path);
	slash = strrchr(p->path, '/');
	*slash = '\0';
	rmdir(p->path);
}

static void test_io_timeout(void **state)
{
	struct drv_haproxy h = {.timeout_ms = 300};
	struct peer p;
	pthread_t th;
	char *out = (char *)1;
	size_t len = 7;
	int64_t t0;

	peer_start(&p, &th, PEER_SILENT);
	h.socket_path = p.path;
	t0 = drv_mono_ms();
	assert_int_equal(drv_haproxy_cmd(&h, "show info", &out, &len), DRV_ETIMEDOUT);
	assert_in_range(drv_mono_ms() - t0, 250, 2000);
	assert_ptr_equal(out, (char *)1);
	assert_int_equal(len, 7);
	peer_stop(&p, th);
	assert_string_equal(p.got, "show info\n");
}

static void test_io_cap(void **state)
{
	struct drv_haproxy h = {.timeout_ms = 5000, .resp_max = 10000};
	struct peer p;
	pthread_t th;
	char *out;
	size_t len;

	peer_start(&p, &th, PEER_FLOOD);
	h.socket_path = p.path;
	assert_int_equal(drv_haproxy_cmd(&h, "show stat", &out, &len), DRV_ETOOBIG);
	peer_stop(&p, th);
}

static void test_io_answer(void **state)
{
	struct drv_haproxy h = {.timeout_ms = 5000};
	struct peer p;
	pthread_t th;
	char *out;
	size_t len;

	peer_start(&p, &th, PEER_ANSWER);
	h.socket_path = p.path;
	assert_int_equal(drv_haproxy_cmd(&h, "show servers state web", &out, &len), DRV_OK);
	assert_int_equal(len, 2);
	assert_string_equal(out, "1\n");
	free(out);
	peer_stop(&p, th);
	assert_string_equal(p.got, "show servers state web\n");
}

static void test_io_bad_args(void **state)
{
	struct drv_haproxy h = {.socket_path = "/nonexistent/drover/admin.sock"};
	char long_path[200], *out;
	size_t len;

	assert_int_equal(drv_haproxy_cmd(&h, "show info", &out, &len), DRV_EIO);
	assert_int_equal(drv_haproxy_cmd(&h, "", &out, &len), DRV_EINVAL);
	assert_int_equal(drv_haproxy_cmd(&h, "show info\nshutdown", &out, &len), DRV_EINVAL);
	memset(long_path, 'p', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	h.socket_path = long_path;
	assert_int_equal(drv_haproxy_cmd(&h, "show info", &out, &len), DRV_EINVAL);
	assert_int_equal(drv_haproxy_set_weight(&h, "web", "a", 257), DRV_EINVAL);
	assert_int_equal(drv_haproxy_set_weight(&h, "web", "a", -1), DRV_EINVAL);
	assert_int_equal(drv_haproxy_set_weight(&h, "web b", "a", 1), DRV_EINVAL);
	assert_int_equal(drv_haproxy_set_state(&h, "web", "a;x", DRV_HAPROXY_DRAIN), DRV_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_servers_parse),
	        cmocka_unit_test(test_servers_states),
	        cmocka_unit_test(test_servers_why),
	        cmocka_unit_test(test_servers_columns_by_name),
	        cmocka_unit_test(test_servers_empty_backend),
	        cmocka_unit_test(test_servers_errors),
	        cmocka_unit_test(test_servers_line_cap),
	        cmocka_unit_test(test_stat_parse),
	        cmocka_unit_test(test_stat_short_rows),
	        cmocka_unit_test(test_stat_errors),
	        cmocka_unit_test(test_stat_cell_cap),
	        cmocka_unit_test(test_check_empty),
	        cmocka_unit_test(test_name_ok),
	        cmocka_unit_test(test_io_timeout),
	        cmocka_unit_test(test_io_cap),
	        cmocka_unit_test(test_io_answer),
	        cmocka_unit_test(test_io_bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
