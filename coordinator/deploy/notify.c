/*
 * notify.c: the webhook notifier. A bounded FIFO of deliveries, one worker
 * thread, libcurl for the POST, libsodium for the HMAC.
 */
#include "notify.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "log.h"

#define URL_MAX 2048

static const char *const event_names[NOTIFY_EVENT_COUNT] = {
        [NOTIFY_STARTED] = "started",         [NOTIFY_TIER_DONE] = "tier_done",
        [NOTIFY_PAUSED] = "paused",           [NOTIFY_AWAITING_PROMOTION] = "awaiting_promotion",
        [NOTIFY_ROLLED_BACK] = "rolled_back", [NOTIFY_SUCCEEDED] = "succeeded",
        [NOTIFY_FAILED] = "failed",           [NOTIFY_AWAITING_APPROVAL] = "awaiting_approval",
};

struct delivery {
	struct delivery *next;
	char *url;
	char *body;
	char sig[80];
	char event[32];
	unsigned attempts;
	int64_t due_ms; /* monotonic */
};

struct notifier {
	struct notify_config cfg;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* work queued, or stop */
	pthread_cond_t idle; /* queue empty and nothing in flight */
	struct delivery *head, *tail;
	size_t queued;
	bool in_flight;
	bool stop;
	atomic_bool stopping; /* stop, read without the lock by a POST in flight */
	struct notify_stats stats;
	pthread_t worker;
};

const char *notify_event_name(enum notify_event ev)
{
	return (unsigned)ev < NOTIFY_EVENT_COUNT ? event_names[ev] : "unknown";
}

int notify_event_parse(const char *name, enum notify_event *out)
{
	for (int i = 0; i < NOTIFY_EVENT_COUNT; i++) {
		if (strcmp(name, event_names[i]) == 0) {
			*out = (enum notify_event)i;
			return DRV_OK;
		}
	}
	return DRV_EINVAL;
}

static void delivery_free(struct delivery *d)
{
	if (d == NULL)
		return;
	free(d->url);
	free(d->body);
	free(d);
}

static const char *field(const json_t *fields, const char *key)
{
	const char *v = fields ? json_string_value(json_object_get(fields, key)) : NULL;
	return v ? v : "";
}

/* One line for humans, for Slack-compatible receivers:
 * "drover: berrys 2.4.0 tier_done (tier core): message". */
static char *slack_text(enum notify_event ev, const json_t *fields)
{
	const char *dep = field(fields, "deployment"), *ver = field(fields, "version");
	const char *tier = field(fields, "tier"), *msg = field(fields, "message");
	char text[1024];
	int n;

	n = snprintf(text, sizeof(text), "drover: %s%s%s %s", dep[0] ? dep : "deployment",
	             ver[0] ? " " : "", ver, event_names[ev]);
	if (tier[0] != '\0' && n > 0 && (size_t)n < sizeof(text))
		n += snprintf(text + n, sizeof(text) - (size_t)n, " (tier %s)", tier);
	if (msg[0] != '\0' && n > 0 && (size_t)n < sizeof(text))
		snprintf(text + n, sizeof(text) - (size_t)n, ": %s", msg);
	json_t *doc = json_pack("{s:s}", "text", text);
	char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	return body;
}

static char *json_body(enum notify_event ev, const json_t *fields, int64_t at_ms)
{
	char at[40];
	time_t secs = (time_t)(at_ms / 1000);
	struct tm tm;
	json_t *doc;
	char *body;

	gmtime_r(&secs, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(at + strlen(at), sizeof(at) - strlen(at), ".%03dZ", (int)(at_ms % 1000));
	doc = fields ? json_deep_copy(fields) : json_object();
	if (doc == NULL || !json_is_object(doc)) {
		json_decref(doc);
		return NULL;
	}
	json_object_set_new(doc, "event", json_string(event_names[ev]));
	json_object_set_new(doc, "at", json_string(at));
	body = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	return body;
}

int notify_render(const struct notify_target *t, enum notify_event ev, const json_t *fields,
                  int64_t at_ms, char **body_out, char sig_out[80])
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char *body;

	if ((unsigned)ev >= NOTIFY_EVENT_COUNT)
		return DRV_EINVAL;
	body = t->format == NOTIFY_FORMAT_SLACK ? slack_text(ev, fields)
	                                        : json_body(ev, fields, at_ms);
	if (body == NULL)
		return DRV_ENOMEM;
	sig_out[0] = '\0';
	if (t->secret != NULL && t->secret[0] != '\0') {
		crypto_auth_hmacsha256_state st;
		crypto_auth_hmacsha256_init(&st, (const unsigned char *)t->secret,
		                            strlen(t->secret));
		crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, strlen(body));
		crypto_auth_hmacsha256_final(&st, mac);
		memcpy(sig_out, "sha256=", 7);
		sodium_bin2hex(sig_out + 7, 80 - 7, mac, sizeof(mac));
	}
	*body_out = body;
	return DRV_OK;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * nmemb;
}

/* curl's progress callback (at least once a second): shutdown ends a POST
 * in flight, so droverd does not wait out the delivery timeout to stop. */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct notifier *n = arg;

	(void)dt, (void)dn, (void)ut, (void)un;
	return atomic_load(&n->stopping);
}

/* POST once. Returns DRV_OK on 2xx; *retry says whether another try may help. */
static int post_once(struct notifier *n, const struct delivery *d, bool *retry, long *status)
{
	struct curl_slist *hdr = NULL;
	char line[128];
	CURLcode cc;
	CURL *c;

	*status = 0;
	*retry = true;
	c = curl_easy_init();
	if (c == NULL)
		return DRV_ENOMEM;
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	snprintf(line, sizeof(line), "X-Drover-Event: %s", d->event);
	hdr = curl_slist_append(hdr, line);
	if (d->sig[0] != '\0') {
		snprintf(line, sizeof(line), "X-Drover-Signature: %s", d->sig);
		hdr = curl_slist_append(hdr, line);
	}
	curl_easy_setopt(c, CURLOPT_URL, d->url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)n->cfg.timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, n);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "drover/" DROVER_VERSION);
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	if (cc != CURLE_OK)
		return DRV_EIO;
	if (*status >= 200 && *status < 300)
		return DRV_OK;
	*retry = *status == 408 || *status == 429 || *status >= 500;
	return DRV_EIO;
}

/* Add d at the tail of the queue. */
static void append_locked(struct notifier *n, struct delivery *d)
{
	d->next = NULL;
	if (n->tail != NULL)
		n->tail->next = d;
	else
		n->head = d;
	n->tail = d;
	n->queued++;
}

/* Put d back on the queue, due after the backoff for its attempt count. */
static void requeue_locked(struct notifier *n, struct delivery *d)
{
	int64_t delay = n->cfg.backoff_ms;

	for (unsigned i = 1; i < d->attempts && delay < n->cfg.backoff_max_ms; i++)
		delay *= 2;
	if (delay > n->cfg.backoff_max_ms)
		delay = n->cfg.backoff_max_ms;
	d->due_ms = drv_mono_ms() + delay;
	append_locked(n, d);
	n->stats.retried++;
}

/* Take the first due delivery, or wait until one is due or work arrives. */
static struct delivery *take_locked(struct notifier *n)
{
	while (!n->stop) {
		int64_t now = drv_mono_ms(), soonest = INT64_MAX;
		struct delivery **pp = &n->head, *prev = NULL;

		for (; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
			if ((*pp)->due_ms <= now) {
				struct delivery *d = *pp;
				*pp = d->next;
				if (n->tail == d)
					n->tail = prev;
				n->queued--;
				return d;
			}
			if ((*pp)->due_ms < soonest)
				soonest = (*pp)->due_ms;
		}
		if (soonest == INT64_MAX) {
			pthread_cond_broadcast(&n->idle);
			pthread_cond_wait(&n->wake, &n->lock);
		} else {
			struct timespec ts = drv_mono_timespec_in(soonest - now);

			pthread_cond_timedwait(&n->wake, &n->lock, &ts);
		}
	}
	return NULL;
}

static void *worker_main(void *arg)
{
	struct notifier *n = arg;
	struct delivery *d;

	pthread_mutex_lock(&n->lock);
	while ((d = take_locked(n)) != NULL) {
		bool retry;
		long status;
		n->in_flight = true;
		pthread_mutex_unlock(&n->lock);
		d->attempts++;
		int rc = post_once(n, d, &retry, &status);
		pthread_mutex_lock(&n->lock);
		n->in_flight = false;
		if (rc == DRV_OK) {
			n->stats.delivered++;
			drv_debug("notify", "delivered", "event=%s url=%s", d->event, d->url);
			delivery_free(d);
		} else if (retry && d->attempts < n->cfg.max_attempts && !n->stop) {
			drv_warn("notify", "delivery failed, will retry",
			         "event=%s url=%s status=%ld attempt=%u", d->event, d->url, status,
			         d->attempts);
			requeue_locked(n, d);
		} else {
			n->stats.failed++;
			drv_error("notify", "delivery failed, giving up",
			          "event=%s url=%s status=%ld attempts=%u", d->event, d->url,
			          status, d->attempts);
			delivery_free(d);
		}
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

static void apply_defaults(struct notify_config *c)
{
	if (c->queue_max == 0)
		c->queue_max = 1024;
	if (c->max_attempts == 0)
		c->max_attempts = 5;
	if (c->backoff_ms <= 0)
		c->backoff_ms = 500;
	if (c->backoff_max_ms <= 0)
		c->backoff_max_ms = 30000;
	if (c->timeout_ms <= 0)
		c->timeout_ms = 5000;
}

int notify_new(const struct notify_config *cfg, struct notifier **out)
{
	struct notifier *n = calloc(1, sizeof(*n));
	pthread_condattr_t ca;

	if (n == NULL)
		return DRV_ENOMEM;
	atomic_init(&n->stopping, false);
	if (cfg != NULL)
		n->cfg = *cfg;
	apply_defaults(&n->cfg);
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(n);
		return DRV_ESYS;
	}
	pthread_mutex_init(&n->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&n->idle, NULL);
	if (pthread_create(&n->worker, NULL, worker_main, n) != 0) {
		pthread_mutex_destroy(&n->lock);
		pthread_cond_destroy(&n->wake);
		pthread_cond_destroy(&n->idle);
		free(n);
		return DRV_ESYS;
	}
	*out = n;
	return DRV_OK;
}

void notify_free(struct notifier *n)
{
	struct delivery *d;

	if (n == NULL)
		return;
	pthread_mutex_lock(&n->lock);
	n->stop = true;
	atomic_store(&n->stopping, true);
	pthread_cond_broadcast(&n->wake);
	pthread_mutex_unlock(&n->lock);
	pthread_join(n->worker, NULL);
	while ((d = n->head) != NULL) {
		n->head = d->next;
		drv_warn("notify", "delivery abandoned at shutdown", "event=%s url=%s", d->event,
		         d->url);
		delivery_free(d);
	}
	pthread_mutex_destroy(&n->lock);
	pthread_cond_destroy(&n->wake);
	pthread_cond_destroy(&n->idle);
	free(n);
	curl_global_cleanup();
}

static int enqueue(struct notifier *n, const struct notify_target *t, enum notify_event ev,
                   const json_t *fields)
{
	struct delivery *d;
	int rc;

	if (t->url == NULL || strlen(t->url) >= URL_MAX)
		return DRV_EINVAL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return DRV_ENOMEM;
	rc = notify_render(t, ev, fields, drv_wall_ms(), &d->body, d->sig);
	if (rc == DRV_OK && (d->url = strdup(t->url)) == NULL)
		rc = DRV_ENOMEM;
	if (rc != DRV_OK) {
		delivery_free(d);
		return rc;
	}
	snprintf(d->event, sizeof(d->event), "%s", event_names[ev]);
	d->due_ms = drv_mono_ms();
	pthread_mutex_lock(&n->lock);
	if (n->queued >= n->cfg.queue_max) {
		n->stats.dropped++;
		pthread_mutex_unlock(&n->lock);
		drv_error("notify", "queue full, delivery dropped", "event=%s url=%s queued=%zu",
		          d->event, d->url, n->cfg.queue_max);
		delivery_free(d);
		return DRV_ETOOBIG;
	}
	append_locked(n, d);
	n->stats.queued++;
	pthread_cond_signal(&n->wake);
	pthread_mutex_unlock(&n->lock);
	return DRV_OK;
}

int notify_post(struct notifier *n, const struct notify_target *targets, size_t n_targets,
                enum notify_event ev, const json_t *fields)
{
	int worst = DRV_OK;

	if ((unsigned)ev >= NOTIFY_EVENT_COUNT)
		return DRV_EINVAL;
	for (size_t i = 0; i < n_targets; i++) {
		if (targets[i].events != 0 && (targets[i].events & (1u << ev)) == 0)
			continue;
		int rc = enqueue(n, &targets[i], ev, fields);
		if (rc != DRV_OK)
			worst = rc;
	}
	return worst;
}

void notify_get_stats(struct notifier *n, struct notify_stats *out)
{
	pthread_mutex_lock(&n->lock);
	*out = n->stats;
	pthread_mutex_unlock(&n->lock);
}

int notify_drain(struct notifier *n, int64_t timeout_ms)
{
	struct drv_deadline dl = drv_deadline_in(timeout_ms);
	int rc = DRV_OK;

	pthread_mutex_lock(&n->lock);
	while (n->queued > 0 || n->in_flight) {
		int64_t left = drv_deadline_left(dl, drv_mono_ms(), 50);
		if (left == 0 && drv_deadline_passed(dl, drv_mono_ms())) {
			rc = DRV_ETIMEDOUT;
			break;
		}
		/* the idle condition is signalled by the worker; poll briefly as a
		 * safety net for retries that come due while we wait */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += left * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&n->idle, &n->lock, &ts);
	}
	pthread_mutex_unlock(&n->lock);
	return rc;
}
