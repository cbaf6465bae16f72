/* health_http.c: an HTTP GET whose status is in range (and whose body holds
 * body_match, when set) is healthy. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "health.h"

#define BODY_MAX 65536

struct body {
	char buf[BODY_MAX + 1];
	size_t len;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = size * n, k = len < BODY_MAX - b->len ? len : BODY_MAX - b->len;

	memcpy(b->buf + b->len, data, k);
	b->len += k;
	b->buf[b->len] = '\0';
	return len; /* the rest is ignored, not an error */
}

static bool probe(const Drover__HealthCheck *hc, const struct health_target *t, uint32_t timeout_ms,
                  char *detail, size_t size)
{
	static __thread struct body b;
	const char *host = t->host && t->host[0] ? t->host : "127.0.0.1";
	const char *path = hc->path && hc->path[0] ? hc->path : "/";
	uint32_t lo = hc->status_min ? hc->status_min : 200;
	uint32_t hi = hc->status_max ? hc->status_max : 299;
	char url[600];
	long status = 0;
	CURLcode cc;
	CURL *h = curl_easy_init();
	bool ok;

	if (h == NULL) {
		snprintf(detail, size, "http: out of memory");
		return false;
	}
	b.len = 0;
	b.buf[0] = '\0';
	snprintf(url, sizeof(url), "http://%s:%u%s%s", host, t->port, path[0] == '/' ? "" : "/",
	         path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "drover-agent/health");
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (cc != CURLE_OK) {
		snprintf(detail, size, "GET %s: %s", url, curl_easy_strerror(cc));
		return false;
	}
	ok = status >= (long)lo && status <= (long)hi;
	if (ok && hc->body_match && hc->body_match[0] && strstr(b.buf, hc->body_match) == NULL) {
		snprintf(detail, size, "GET %s: %ld but the body lacks \"%.60s\"", url, status,
		         hc->body_match);
		return false;
	}
	snprintf(detail, size, "GET %s: %ld%s", url, status, ok ? "" : " (outside the range)");
	return ok;
}

const struct health_kind_ops health_http_ops = {.name = "http", .probe = probe};
