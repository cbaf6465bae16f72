/*
 * test_notify.c: the webhook notifier against a real HTTP receiver
 * (libmicrohttpd on 127.0.0.1, an ephemeral port) in this process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "notify.h"

struct receiver {
	struct MHD_Daemon *d;
	unsigned port;
	pthread_mutex_t lock;
	int hits;
	int fail_first; /* answer 500 to this many requests */
	int status;     /* then answer this (default 200) */
	int stall_ms;   /* sleep before answering */
	char body[4096];
	char sig[128];
	char event[64];
};

struct upload {
	char buf[4096];
	size_t len;
};

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *data_size, void **con_cls)
{
	struct receiver *r = cls;
	struct upload *u = *con_cls;
	struct MHD_Response *resp;
	int status;

	(void)url;
	(void)version;
	if (u == NULL) {
		*con_cls = calloc(1, sizeof(struct upload));
		return MHD_YES;
	}
	if (*data_size > 0) {
		size_t n = *data_size < sizeof(u->buf) - 1 - u->len ? *data_size
		                                                    : sizeof(u->buf) - 1 - u->len;
		memcpy(u->buf + u->len, data, n);
		u->len += n;
		*data_size = 0;
		return MHD_YES;
	}
	if (r->stall_ms > 0)
		usleep((useconds_t)r->stall_ms * 1000);
	const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Drover-Signature");
	const char *ev = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Drover-Event");
	pthread_mutex_lock(&r->lock);
	r->hits++;
	assert_string_equal(method, "POST");
	snprintf(r->body, sizeof(r->body), "%.*s", (int)u->len, u->buf);
	snprintf(r->sig, sizeof(r->sig), "%s", sig ? sig : "");
	snprintf(r->event, sizeof(r->event), "%s", ev ? ev : "");
	status = r->fail_first > 0 ? 500 : r->status;
	if (r->fail_first > 0)
		r->fail_first--;
	pthread_mutex_unlock(&r->lock);
	resp = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

static struct receiver *receiver_start(void)
{
	struct receiver *r = calloc(1, sizeof(*r));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};

	sa.sin_addr.s_addr = htonl(0x7f000001);
	pthread_mutex_init(&r->lock, NULL);
	r->status = 200;
	r->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
	                        NULL, NULL, handle, r, MHD_OPTION_SOCK_ADDR, &sa,
	                        MHD_OPTION_NOTIFY_COMPLETED, completed, r, MHD_OPTION_END);
	assert_non_null(r->d);
	r->port = MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT)->port;
	return r;
}

static void receiver_stop(struct receiver *r)
{
	MHD_stop_daemon(r->d);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static int hits(struct receiver *r)
{
	pthread_mutex_lock(&r->lock);
	int h = r->hits;
	pthread_mutex_unlock(&r->lock);
	return h;
}

static struct notifier *fast_notifier(size_t queue_max)
{
	struct notify_config cfg = {
	        .queue_max = queue_max, .max_attempts = 4, .backoff_ms = 10, .timeout_ms = 5000};
	struct notifier *n = NULL;

	assert_int_equal(notify_new(&cfg, &n), DRV_OK);
	return n;
}

static json_t *fields(void)
{
	return json_pack("{s:s,s:s,s:s}", "deployment", "berrys", "version", "2.4.0", "tier",
	                 "core");
}

static void url_of(struct receiver *r, char *out, size_t cap)
{
	snprintf(out, cap, "http://127.0.0.1:%u/hook", r->port);
}

static void delivers_signed_json(void **state)
{
	(void)state;
	struct receiver *r = receiver_start();
	struct notifier *n = fast_notifier(16);
	char url[64], expect[80];
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	json_t *f = fields();

	url_of(r, url, sizeof(url));
	struct notify_target t = {.url = url, .secret = "s3cret"};
	assert_int_equal(notify_post(n, &t, 1, NOTIFY_TIER_DONE, f), DRV_OK);
	assert_int_equal(notify_drain(n, 10000), DRV_OK);
	assert_int_equal(hits(r), 1);
	assert_string_equal(r->event, "tier_done");
	crypto_auth_hmacsha256_state hs;
	crypto_auth_hmacsha256_init(&hs, (const unsigned char *)"s3cret", 6);
	crypto_auth_hmacsha256_update(&hs, (unsigned char *)r->body, strlen(r->body));
	crypto_auth_hmacsha256_final(&hs, mac);
	memcpy(expect, "sha256=", 7);
	sodium_bin2hex(expect + 7, sizeof(expect) - 7, mac, sizeof(mac));
	assert_string_equal(r->sig, expect);
	json_t *doc = json_loads(r->body, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "event")), "tier_done");
	assert_string_equal(json_string_value(json_object_get(doc, "deployment")), "berrys");
	assert_string_equal(json_string_value(json_object_get(doc, "tier")), "core");
	assert_non_null(json_string_value(json_object_get(doc, "at")));
	json_decref(doc);
	struct notify_stats st;
	notify_get_stats(n, &st);
	assert_int_equal(st.delivered, 1);
	assert_int_equal(st.failed, 0);
	json_decref(f);
	notify_free(n);
	receiver_stop(r);
}

static void retries_server_errors_then_succeeds(void **state)
{
	(void)state;
	struct receiver *r = receiver_start();
	struct notifier *n = fast_notifier(16);
	struct notify_stats st;
	char url[64];

	r->fail_first = 2;
	url_of(r, url, sizeof(url));
	struct notify_target t = {.url = url};
	assert_int_equal(notify_post(n, &t, 1, NOTIFY_SUCCEEDED, NULL), DRV_OK);
	assert_int_equal(notify_drain(n, 10000), DRV_OK);
	assert_int_equal(hits(r), 3);
	assert_string_equal(r->sig, ""); /* no secret, no signature */
	notify_get_stats(n, &st);
	assert_int_equal(st.delivered, 1);
	assert_int_equal(st.retried, 2);
	notify_free(n);
	receiver_stop(r);
}

static void gives_up_after_max_attempts(void **state)
{
	(void)state;
	struct receiver *r = receiver_start();
	struct notifier *n = fast_notifier(16);
	struct notify_stats st;
	char url[64];

	r->status = 503;
	url_of(r, url, sizeof(url));
	struct notify_target t = {.url = url};
	assert_int_equal(notify_post(n, &t, 1, NOTIFY_FAILED, NULL), DRV_OK);
	assert_int_equal(notify_drain(n, 10000), DRV_OK);
	assert_int_equal(hits(r), 4);
	notify_get_stats(n, &st);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.delivered, 0);
	notify_free(n);
	receiver_stop(r);
}

static void client_errors_are_not_retried(void **state)
{
	(void)state;
	struct receiver *r = receiver_start();
	struct notifier *n = fast_notifier(16);
	struct notify_stats st;
	char url[64];

	r->status = 400;
	url_of(r, url, sizeof(url));
	struct notify_target t = {.url = url};
	assert_int_equal(notify_post(n, &t, 1, NOTIFY_PAUSED, NULL), DRV_OK);
	assert_int_equal(notify_drain(n, 10000), DRV_OK);
	assert_int_equal(hits(r), 1);
	notify_get_stats(n, &st);
	assert_int_equal(st.failed, 1);
	notify_free(n);
	receiver_stop(r);
}

static void unreachable_receiver_fails_cleanly(void **state)
{
	(void)state;
	struct receiver *r = receiver_start();
	struct notifier *n = fast_notifier(16);
	struct notify_stats st;
	char url[64];

	url_of(r, url, sizeof(url));
	receiver_stop(r); /* nothing listens on that port any more */
	struct notify_target t = {.url = url};
	assert_int_equal(notify_post(n, &t, 1, NOTIFY_STARTED, NULL), DRV_OK);
	assert_int_equal(notify_drain(n, 10000), DRV_OK);
	notify_get_stats(n, &st);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.retried, 3);
	notify_free(n);
}

static void subscriptions_filter_events(void **state)
{
	(void)state;
	struct receiver *r = receiver_start();
	struct notifier *n = fast_notifier(16);
	char url[64];

	url_of(r, url, sizeof(url));
	struct notify_target t = {.url = url, .events = 1u << NOTIFY_ROLLED_BACK};
	assert_int_equal(notify_post(n, &t, 1, NOTIFY_STARTED, NULL), DRV_OK);
	assert_int_equal(notify_post(n, &t, 1, NOTIFY_ROLLED_BACK, NULL), DRV_OK);
	assert_int_equal(notify_drain(n, 10000), DRV_OK);
	assert_int_equal(hits(r), 1);
	assert_string_equal(r->event, "rolled_back");
	notify_free(n);
	receiver_stop(r);
}

static void full_queue_drops_without_blocking(void **state)
{
	(void)state;
	struct receiver *r = receiver_start();
	struct notifier *n = fast_notifier(4);
	struct notify_stats st;
	char url[64];
	int dropped = 0;

	r->stall_ms = 300; /* 20 deliveries would take 6 s if posting waited */
	url_of(r, url, sizeof(url));
	struct notify_target t = {.url = url};
	int64_t t0 = drv_mono_ms();
	for (int i = 0; i < 20; i++)
		dropped += notify_post(n, &t, 1, NOTIFY_STARTED, NULL) == DRV_ETOOBIG;
	int64_t took = drv_mono_ms() - t0;
	assert_true(took < 1000);
	assert_true(dropped >= 20 - 5); /* at most 4 queued + 1 in flight */
	notify_get_stats(n, &st);
	assert_int_equal(st.dropped, (uint64_t)dropped);
	assert_int_equal(st.queued + st.dropped, 20);
	assert_int_equal(notify_drain(n, 20000), DRV_OK);
	notify_get_stats(n, &st);
	assert_int_equal(st.delivered, st.queued);
	notify_free(n);
	receiver_stop(r);
}

static void slack_payload(void **state)
{
	(void)state;
	struct notify_target t = {.url = "http://x", .format = NOTIFY_FORMAT_SLACK};
	json_t *f = fields();
	char *body, sig[80];

	assert_int_equal(notify_render(&t, NOTIFY_TIER_DONE, f, 0, &body, sig), DRV_OK);
	assert_string_equal(body, "{\"text\":\"drover: berrys 2.4.0 tier_done (tier core)\"}");
	assert_string_equal(sig, "");
	free(body);
	json_object_set_new(f, "message", json_string("health failed on web-1"));
	assert_int_equal(notify_render(&t, NOTIFY_ROLLED_BACK, f, 0, &body, sig), DRV_OK);
	assert_non_null(strstr(body, "rolled_back (tier core): health failed on web-1"));
	free(body);
	json_decref(f);
}

static void event_names_round_trip(void **state)
{
	(void)state;
	enum notify_event ev;

	for (int i = 0; i < NOTIFY_EVENT_COUNT; i++) {
		assert_int_equal(notify_event_parse(notify_event_name((enum notify_event)i), &ev),
		                 DRV_OK);
		assert_int_equal(ev, i);
	}
	assert_int_equal(notify_event_parse("exploded", &ev), DRV_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(delivers_signed_json),
	        cmocka_unit_test(retries_server_errors_then_succeeds),
	        cmocka_unit_test(gives_up_after_max_attempts),
	        cmocka_unit_test(client_errors_are_not_retried),
	        cmocka_unit_test(unreachable_receiver_fails_cleanly),
	        cmocka_unit_test(subscriptions_filter_events),
	        cmocka_unit_test(full_queue_drops_without_blocking),
	        cmocka_unit_test(slack_payload),
	        cmocka_unit_test(event_names_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
