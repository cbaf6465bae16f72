/* client.c: libcurl requests to droverd's API, error reporting, and an
 * event-stream reader with Last-Event-ID resume. */
#include "client.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"

#define SSE_LINE_MAX (1u << 20)
/* An id: line kept to resume from: a stream's cursor (docs/api.md; the
 * coordinator writes at most 2,580 characters) */
#define SSE_ID_MAX     2600
#define STALL_S        45 /* no byte for this long: the stream is dead (pings come every 15 s) */
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 5000

/* ------------------------------------------------------------- requests */

struct sink {
	char *buf;
	size_t len, cap;
	bool overflow;
};

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	struct sink *s = ud;
	size_t len = size * n;

	if (s->len + len > CTL_REPLY_MAX) {
		s->overflow = true;
		return 0;
	}
	if (s->len + len + 1 > s->cap) {
		size_t cap = (s->len + len + 1) * 2;
		char *grown = realloc(s->buf, cap);
		if (!grown)
			return 0;
		s->buf = grown;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	s->buf[s->len] = '\0';
	return len;
}

static struct curl_slist *base_headers(const struct ctl *ctl, const char *content_type,
                                       const char *extra)
{
	struct curl_slist *h = NULL, *t;
	char line[512];

	h = curl_slist_append(h, "Accept: application/json");
	if (h && ctl->token[0]) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", ctl->token);
		t = curl_slist_append(h, line);
		h = t ? t : (curl_slist_free_all(h), NULL);
	}
	if (h && content_type) {
		snprintf(line, sizeof(line), "Content-Type: %s", content_type);
		t = curl_slist_append(h, line);
		h = t ? t : (curl_slist_free_all(h), NULL);
	}
	if (h && extra) {
		t = curl_slist_append(h, extra);
		h = t ? t : (curl_slist_free_all(h), NULL);
	}
	return h;
}

/* The address that answered last (the CLI is one thread): later requests
 * of the same command start there. */
static size_t cur_addr;

static const char *base_url(const struct ctl *ctl)
{
	return ctl->n_addrs > 0 ? ctl->addrs[cur_addr % ctl->n_addrs] : ctl->url;
}

static CURL *make_handle_url(const struct ctl *ctl, const char *method, const char *url,
                             char *errbuf)
{
	CURL *c = curl_easy_init();

	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, ctl->connect_timeout_s);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "drover/" DROVER_VERSION);
	curl_easy_setopt(c, CURLOPT_VERBOSE, ctl->verbose ? 1L : 0L);
	if (ctl->cacert[0] != '\0')
		curl_easy_setopt(c, CURLOPT_CAINFO, ctl->cacert);
	return c;
}

static CURL *make_handle(const struct ctl *ctl, const char *method, const char *path, char *errbuf)
{
	char url[2048];

	snprintf(url, sizeof(url), "%s%s", base_url(ctl), path);
	return make_handle_url(ctl, method, url, errbuf);
}

/* One exchange with url; *redirect gets a 307/308's target (else ""). */
static int request_url(const struct ctl *ctl, const char *method, const char *url,
                       const char *content_type, const char *body, size_t len, struct ctl_reply *r,
                       CURLcode *ccp, char redirect[2048])
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct sink s = {0};
	struct curl_slist *h;
	CURL *c;
	CURLcode cc;
	json_error_t je;
	char *loc = NULL;

	memset(r, 0, sizeof(*r));
	redirect[0] = '\0';
	c = make_handle_url(ctl, method, url, errbuf);
	h = base_headers(ctl, body ? content_type : NULL, NULL);
	if (!c || !h) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		curl_easy_cleanup(c);
		curl_slist_free_all(h);
		return DRV_ENOMEM;
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, ctl->timeout_s);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	cc = curl_easy_perform(c);
	*ccp = cc;
	if (cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	if ((r->status == 307 || r->status == 308) &&
	    curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc != NULL &&
	    (strncmp(loc, "http://", 7) == 0 || strncmp(loc, "https://", 8) == 0) &&
	    strlen(loc) < 2048)
		snprintf(redirect, 2048, "%s", loc);
	if (cc != CURLE_OK)
		snprintf(r->error, sizeof(r->error), "%s",
		         s.overflow  ? "the reply is too large"
		         : errbuf[0] ? errbuf
		                     : curl_easy_strerror(cc));
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	r->body = s.buf ? s.buf : strdup("");
	r->len = s.len;
	if (r->status && r->len)
		r->json = json_loadb(r->body, r->len, 0, &je);
	return r->status ? DRV_OK : DRV_EIO;
}

#define REDIRECTS_MAX 3

/* Ask another address? Always when nothing was sent (no connection) or for
 * a read; a follower with no leader known acted on nothing either. */
static bool try_next(const char *method, CURLcode cc, const struct ctl_reply *r)
{
	const char *code =
	        json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));

	if (r->status == 503 && code != NULL && strcmp(code, "not-leader") == 0)
		return true;
	if (r->status != 0)
		return false;
	return strcmp(method, "GET") == 0 || cc == CURLE_COULDNT_CONNECT ||
	       cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_RESOLVE_PROXY;
}

/* One address: the request, then a follower's redirects to the leader (307
 * keeps the method and the body). */
static int request_at(const struct ctl *ctl, const char *method, const char *path,
                      const char *content_type, const char *body, size_t len, struct ctl_reply *r,
                      CURLcode *cc)
{
	char url[2048], next[2048];
	int rc;

	snprintf(url, sizeof(url), "%s%s", base_url(ctl), path);
	for (int hop = 0;; hop++) {
		rc = request_url(ctl, method, url, content_type, body, len, r, cc, next);
		if (next[0] == '\0' || hop == REDIRECTS_MAX)
			return rc;
		if (strncmp(url, "https://", 8) == 0 && strncmp(next, "https://", 8) != 0) {
			/* never carry the token from HTTPS down to plain HTTP */
			fprintf(stderr, "drover: not following %s's redirect to %s (not HTTPS)\n",
			        base_url(ctl), next);
			return rc;
		}
		if (ctl->verbose)
			fprintf(stderr, "drover: %s answered %ld: following to %s\n", url,
			        r->status, next);
		ctl_reply_free(r);
		snprintf(url, sizeof(url), "%s", next);
	}
}

int ctl_request(const struct ctl *ctl, const char *method, const char *path,
                const char *content_type, const char *body, size_t len, struct ctl_reply *r)
{
	size_t n = ctl->n_addrs > 0 ? ctl->n_addrs : 1;
	CURLcode cc = CURLE_OK;
	int rc = DRV_EIO;

	for (size_t i = 0; i < n; i++) {
		if (i > 0) {
			if (!try_next(method, cc, r))
				break;
			ctl_reply_free(r);
			cur_addr = (cur_addr + 1) % n;
		}
		rc = request_at(ctl, method, path, content_type, body, len, r, &cc);
	}
	return rc;
}

void ctl_reply_free(struct ctl_reply *r)
{
	json_decref(r->json);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

int ctl_exit_code(const struct ctl_reply *r)
{
	/* 429: too many failed authentications from this address */
	if (r->status == 0 || r->status == 401 || r->status == 403 || r->status == 429)
		return CTL_EXIT_UNREACHABLE;
	if (r->status >= 200 && r->status < 300)
		return CTL_EXIT_OK;
	if (r->status >= 400 && r->status < 500)
		return CTL_EXIT_USAGE;
	return CTL_EXIT_FAILED;
}

static const char *err_str(const json_t *err, const char *key)
{
	const char *s = json_string_value(json_object_get(err, key));
	return s ? s : "";
}

void ctl_report(const struct ctl *ctl, const struct ctl_reply *r, const char *file)
{
	const json_t *err = json_object_get(r->json, "error");
	const char *msg = err_str(err, "message"), *field = err_str(err, "field");
	json_int_t line = json_integer_value(json_object_get(err, "line"));

	if (r->status == 0) {
		fprintf(stderr,
		        "drover: cannot reach the coordinator at %s%s: %s\n"
		        "drover: is droverd running? (--coordinator URL or DROVER_ADDR)\n",
		        base_url(ctl), ctl->n_addrs > 1 ? " (nor any other address given)" : "",
		        r->error);
		return;
	}
	if (!msg[0])
		msg = r->status >= 500 ? "the coordinator failed" : "the request was refused";
	/* Some messages name their field already: do not say it twice. */
	if (field[0] && strncmp(msg, field, strlen(field)) == 0 && msg[strlen(field)] == ':')
		field = "";
	if (r->status == 401) {
		fprintf(stderr,
		        "drover: not authenticated: %s (HTTP 401)\n"
		        "drover: give a token with --token, --token-file, DROVER_TOKEN or "
		        "DROVER_TOKEN_FILE\n",
		        msg);
	} else if (r->status == 403) {
		fprintf(stderr, "drover: not allowed: %s (HTTP 403)\n", msg);
	} else if (file && line > 0) {
		fprintf(stderr, "%s:%lld: %s%s%s\n", file, (long long)line, field,
		        field[0] ? ": " : "", msg);
	} else {
		fprintf(stderr, "drover: %s%s%s (HTTP %ld%s%s)\n", field, field[0] ? ": " : "", msg,
		        r->status, err ? ", " : "", err_str(err, "code"));
	}
}

int ctl_call(const struct ctl *ctl, const char *method, const char *path, const json_t *body,
             json_t **out)
{
	struct ctl_reply r;
	char *text = NULL;
	int code;

	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text) {
			fprintf(stderr, "drover: out of memory\n");
			return CTL_EXIT_FAILED;
		}
	}
	ctl_request(ctl, method, path, "application/json", text, text ? strlen(text) : 0, &r);
	free(text);
	code = ctl_exit_code(&r);
	if (code == CTL_EXIT_OK && r.len > 0 && !r.json) {
		fprintf(stderr, "drover: the coordinator's reply is not JSON (HTTP %ld)\n",
		        r.status);
		code = CTL_EXIT_FAILED;
	}
	if (code != CTL_EXIT_OK) {
		if (r.status == 0 || r.status >= 300)
			ctl_report(ctl, &r, NULL);
	} else if (out) {
		*out = r.json;
		r.json = NULL;
	}
	ctl_reply_free(&r);
	return code;
}

int ctl_escape(const char *s, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		             (c >= '0' && c <= '9') || strchr("-._~", c);
		if (o + (plain ? 1 : 3) >= cap)
			return DRV_ETOOBIG;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o >= cap)
		return DRV_ETOOBIG;
	out[o] = '\0';
	return DRV_OK;
}

/* -------------------------------------------------------- event streams */

struct sse {
	CURL *curl;
	ctl_event_fn fn;
	void *ctx;
	int64_t *last_id;
	long status;
	struct sink err; /* body of a non-200 answer */
	char *line;      /* the line being assembled */
	size_t line_len;
	char *data; /* data: lines of the current event */
	size_t data_len;
	char kind[128];
	int64_t pending_id;
	/* the id: line as sent (a cursor: the position and the ids below it
	 * still owed), sent back as Last-Event-ID; "" : the bare *last_id */
	char pending_cursor[SSE_ID_MAX + 1];
	char cursor[SSE_ID_MAX + 1];
	int stop; /* fn's stop value */
	bool got_bytes;
	long retry_ms;
	char neterr[CURL_ERROR_SIZE]; /* why the last connection failed */
};

static int append(char **buf, size_t *len, const char *s, size_t n)
{
	char *grown;

	if (*len + n + 1 > SSE_LINE_MAX)
		return DRV_ETOOBIG;
	grown = realloc(*buf, *len + n + 1);
	if (!grown)
		return DRV_ENOMEM;
	memcpy(grown + *len, s, n);
	*buf = grown;
	*len += n;
	(*buf)[*len] = '\0';
	return DRV_OK;
}

static void dispatch(struct sse *s)
{
	struct ctl_event ev = {.id = s->pending_id, .kind = s->kind[0] ? s->kind : "message"};
	json_error_t je;

	if (s->data_len == 0)
		goto out_reset;
	ev.raw = s->data;
	ev.data = json_loads(s->data, 0, &je);
	/* An event that committed late comes after higher ids under the
	 * stream's position (the id: field, what a resume starts from); its
	 * own id is in its data (docs/api.md). */
	if (json_is_integer(json_object_get(ev.data, "id")))
		ev.id = json_integer_value(json_object_get(ev.data, "id"));
	if (s->pending_id > 0) {
		*s->last_id = s->pending_id;
		memcpy(s->cursor, s->pending_cursor, sizeof(s->cursor));
	}
	s->stop = s->fn(&ev, s->ctx);
	json_decref(ev.data);
out_reset:
	free(s->data);
	s->data = NULL;
	s->data_len = 0;
	s->kind[0] = '\0';
}

/* The id: line to resume from, if it has only a cursor's characters (it
 * goes into a request header) and fits; else the bare id is sent. */
static void keep_cursor(struct sse *s, const char *value)
{
	size_t n = strlen(value);

	if (n > SSE_ID_MAX || strspn(value, "0123456789~,-") != n)
		n = 0;
	memcpy(s->pending_cursor, value, n);
	s->pending_cursor[n] = '\0';
}

/* One complete line of the stream (without its newline). */
static void sse_line(struct sse *s, char *line, size_t len)
{
	const char *value;
	char *colon;

	if (len && line[len - 1] == '\r')
		line[--len] = '\0';
	if (len == 0) {
		dispatch(s);
		return;
	}
	if (line[0] == ':')
		return;
	colon = strchr(line, ':');
	value = colon ? colon + 1 + (colon[1] == ' ') : "";
	if (colon)
		*colon = '\0';
	if (strcmp(line, "data") == 0) {
		if (s->data_len && append(&s->data, &s->data_len, "\n", 1) != DRV_OK)
			return;
		append(&s->data, &s->data_len, value, strlen(value));
	} else if (strcmp(line, "event") == 0) {
		snprintf(s->kind, sizeof(s->kind), "%s", value);
	} else if (strcmp(line, "id") == 0) {
		s->pending_id = strtoll(value, NULL, 10);
		keep_cursor(s, value);
	} else if (strcmp(line, "retry") == 0) {
		long ms = strtol(value, NULL, 10);
		if (ms >= BACKOFF_MIN_MS && ms <= 60000)
			s->retry_ms = ms;
	}
}

static size_t on_sse(char *data, size_t size, size_t n, void *ud)
{
	struct sse *s = ud;
	size_t len = size * n;

	if (!s->status)
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status != 200)
		return on_body(data, size, n, &s->err);
	s->got_bytes = true;
	for (size_t i = 0; i < len && !s->stop; i++) {
		if (data[i] != '\n') {
			if (append(&s->line, &s->line_len, &data[i], 1) != DRV_OK)
				return 0;
			continue;
		}
		sse_line(s, s->line ? s->line : (char[]){'\0'}, s->line_len);
		s->line_len = 0;
		if (s->line)
			s->line[0] = '\0';
	}
	return s->stop ? 0 : len;
}

/* One connection. Returns -1 when the stream broke or ended (resume if
 * following), otherwise the value to return. */
static int sse_once(const struct ctl *ctl, const char *path, struct sse *s)
{
	char errbuf[CURL_ERROR_SIZE] = "", lei[SSE_ID_MAX + 32];
	struct curl_slist *h;
	CURLcode cc;
	int rc = -1;

	if (s->cursor[0] != '\0')
		snprintf(lei, sizeof(lei), "Last-Event-ID: %s", s->cursor);
	else
		snprintf(lei, sizeof(lei), "Last-Event-ID: %lld", (long long)*s->last_id);
	s->curl = make_handle(ctl, "GET", path, errbuf);
	h = base_headers(ctl, NULL, *s->last_id > 0 ? lei : NULL);
	h = h ? curl_slist_append(h, "Accept: text/event-stream") : NULL;
	if (!s->curl || !h) {
		curl_easy_cleanup(s->curl);
		curl_slist_free_all(h);
		return CTL_EXIT_FAILED;
	}
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, on_sse);
	curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(s->curl, CURLOPT_LOW_SPEED_TIME, (long)STALL_S);
	s->status = 0;
	cc = curl_easy_perform(s->curl);
	if (!s->status)
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->stop) {
		rc = s->stop;
	} else if (s->status && s->status != 200) {
		struct ctl_reply r = {.status = s->status, .body = s->err.buf, .len = s->err.len};
		r.json = s->err.buf ? json_loadb(s->err.buf, s->err.len, 0, NULL) : NULL;
		ctl_report(ctl, &r, NULL);
		json_decref(r.json);
		rc = ctl_exit_code(&r);
	} else if (cc != CURLE_OK && ctl->verbose) {
		fprintf(stderr, "drover: event stream interrupted: %s\n",
		        errbuf[0] ? errbuf : curl_easy_strerror(cc));
	}
	if (rc == -1 && s->status == 0)
		snprintf(s->neterr, sizeof(s->neterr), "%s",
		         errbuf[0] ? errbuf : curl_easy_strerror(cc));
	free(s->err.buf);
	s->err = (struct sink){0};
	curl_slist_free_all(h);
	curl_easy_cleanup(s->curl);
	s->curl = NULL;
	return rc;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

int ctl_events_stream(const struct ctl *ctl, const char *path, bool follow, int64_t *last_id,
                      ctl_event_fn fn, void *ctx)
{
	struct sse s = {.fn = fn, .ctx = ctx, .last_id = last_id, .retry_ms = BACKOFF_MIN_MS};
	long backoff = BACKOFF_MIN_MS, failing_ms = 0;
	int rc;

	for (;;) {
		s.got_bytes = false;
		s.line_len = 0;
		rc = sse_once(ctl, path, &s);
		free(s.data);
		s.data = NULL;
		s.data_len = 0;
		if (rc != -1 || !follow)
			break;
		if (s.status == 200 && s.got_bytes) {
			backoff = s.retry_ms;
			failing_ms = 0;
		} else if ((failing_ms += backoff) >= CTL_RECONNECT_GIVE_UP_S * 1000L) {
			rc = CTL_EXIT_UNREACHABLE;
			break;
		}
		/* Jitter keeps a crowd of followers from reconnecting in step. */
		sleep_ms(backoff + rand() % (backoff / 4 + 1));
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	free(s.line);
	if (rc == -1)
		rc = s.status == 200 ? CTL_EXIT_OK : CTL_EXIT_UNREACHABLE;
	if (rc == CTL_EXIT_UNREACHABLE && s.status == 0) {
		struct ctl_reply r = {.status = 0};
		snprintf(r.error, sizeof(r.error), "%s", s.neterr);
		ctl_report(ctl, &r, NULL);
	}
	return rc == CTL_STREAM_DONE ? CTL_EXIT_OK : rc;
}
