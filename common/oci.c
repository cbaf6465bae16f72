/* oci.c: image references and the registry v2 client (libcurl). */
#include "oci.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "atomicfile.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "oci_manifest.h"

#define ERRBODY_MAX DRV_OCI_ERRBODY_MAX
#define TOKEN_MAX   (64u << 10)

__attribute__((format(printf, 3, 4))) static int ferr(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && size > 0) {
		va_start(ap, fmt);
		vsnprintf(err, size, fmt, ap);
		va_end(ap);
	}
	return DRV_EINVAL;
}

/* --- references --- */

void drv_oci_ref_clear(struct drv_oci_ref *r)
{
	if (r == NULL)
		return;
	free(r->registry);
	free(r->repository);
	free(r->tag);
	free(r->digest);
	free(r->layout_path);
	memset(r, 0, sizeof(*r));
}

static bool name_ok(const char *s)
{
	/* Lowercase path components of [a-z0-9._-], separated by '/'. */
	if (*s == '\0' || *s == '/' || s[strlen(s) - 1] == '/' || strstr(s, "//"))
		return false;
	for (; *s; s++) {
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '.' ||
		      *s == '_' || *s == '-' || *s == '/'))
			return false;
	}
	return true;
}

static bool tag_ok(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > 128 || t[0] == '.' || t[0] == '-')
		return false;
	return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* Split "rest[@digest]" then "rest[:tag]" (the tag after the last '/'). */
static int split_tail(char *s, char **tag, char **digest, char *err, size_t size)
{
	char *at = strchr(s, '@'), *slash, *colon;

	*tag = NULL;
	*digest = NULL;
	if (at != NULL) {
		*at = '\0';
		if (!drv_digest_valid(at + 1))
			return ferr(err, size, "'%s' is not a sha256 digest", at + 1);
		*digest = at + 1;
	}
	slash = strrchr(s, '/');
	colon = strrchr(s, ':');
	if (colon != NULL && (slash == NULL || colon > slash)) {
		*colon = '\0';
		if (!tag_ok(colon + 1))
			return ferr(err, size, "'%s' is not a valid tag", colon + 1);
		*tag = colon + 1;
	}
	return DRV_OK;
}

static int set_parts(struct drv_oci_ref *r, const char *tag, const char *digest)
{
	r->tag = strdup(tag ? tag : "");
	r->digest = strdup(digest ? digest : "");
	return r->tag && r->digest ? DRV_OK : DRV_ENOMEM;
}

static int parse_layout(const char *s, struct drv_oci_ref *r, char *err, size_t size)
{
	char *copy = strdup(s + strlen(DRV_OCI_LAYOUT_PREFIX)), *tag, *digest;
	int rc;

	if (copy == NULL)
		return DRV_ENOMEM;
	rc = split_tail(copy, &tag, &digest, err, size);
	if (rc == DRV_OK && copy[0] != '/')
		rc = ferr(err, size, "oci-layout path '%s' must be absolute", copy);
	if (rc == DRV_OK) {
		r->layout_path = strdup(copy);
		rc = r->layout_path ? set_parts(r, tag, digest) : DRV_ENOMEM;
	}
	free(copy);
	return rc;
}

static int parse_registry_ref(const char *s, struct drv_oci_ref *r, char *err, size_t size)
{
	char *copy = strdup(s), *tag, *digest, *name, *slash;
	const char *host = "registry-1.docker.io";
	int rc;

	if (copy == NULL)
		return DRV_ENOMEM;
	rc = split_tail(copy, &tag, &digest, err, size);
	name = copy;
	slash = strchr(copy, '/');
	if (rc == DRV_OK && slash != NULL &&
	    (memchr(copy, '.', (size_t)(slash - copy)) ||
	     memchr(copy, ':', (size_t)(slash - copy)) || strncmp(copy, "localhost/", 10) == 0)) {
		*slash = '\0';
		host = copy;
		name = slash + 1;
	}
	if (rc == DRV_OK && !name_ok(name))
		rc = ferr(err, size, "'%s' is not a valid repository name", name);
	if (rc == DRV_OK) {
		bool hub =
		        strcmp(host, "registry-1.docker.io") == 0 || strcmp(host, "docker.io") == 0;
		if (hub)
			host = "registry-1.docker.io";
		r->registry = strdup(host);
		if (hub && strchr(name, '/') == NULL) {
			if (asprintf(&r->repository, "library/%s", name) < 0)
				r->repository = NULL;
		} else {
			r->repository = strdup(name);
		}
		rc = r->registry && r->repository ? set_parts(r, tag, digest) : DRV_ENOMEM;
	}
	free(copy);
	return rc;
}

int drv_oci_ref_parse(const char *s, struct drv_oci_ref *out, char *err, size_t size)
{
	struct drv_oci_ref r = {0};
	int rc;

	if (s == NULL || *s == '\0' || strlen(s) > 1024)
		return ferr(err, size, "image reference is empty or longer than 1024 bytes");
	if (strncmp(s, DRV_OCI_LAYOUT_PREFIX, strlen(DRV_OCI_LAYOUT_PREFIX)) == 0)
		rc = parse_layout(s, &r, err, size);
	else
		rc = parse_registry_ref(s, &r, err, size);
	if (rc != DRV_OK) {
		drv_oci_ref_clear(&r);
		return rc;
	}
	*out = r;
	return DRV_OK;
}

/* --- the client --- */

struct drv_oci_client {
	CURL *curl;
	CURLM *multi; /* runs every transfer, so cancel and the deadline are seen */
	char *base;   /* scheme://host */
	char *repo;
	char *auth; /* "Authorization: Bearer ..." or NULL */
	struct drv_oci_opts opts;
};

struct resp {
	CURL *curl;
	long status;
	char ctype[128];
	char digest[DRV_DIGEST_STR];
	char challenge[1024];
	/* body */
	drv_oci_sink_fn sink;
	void *arg;
	char *buf; /* when collecting */
	size_t len, cap, max;
	char errbody[ERRBODY_MAX + 1];
	size_t errlen;
	bool sink_failed, too_big, errbody_full;
};

static bool ok_status(long s)
{
	return s >= 200 && s < 300;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;
	size_t len = size * n, kl;
	const char *names[] = {"content-type:", "docker-content-digest:", "www-authenticate:"};
	char *outs[] = {r->ctype, r->digest, r->challenge};
	size_t sizes[] = {sizeof(r->ctype), sizeof(r->digest), sizeof(r->challenge)};

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		r->ctype[0] = r->digest[0] = r->challenge[0] = '\0';
		return len;
	}
	for (size_t i = 0; i < 3; i++) {
		kl = strlen(names[i]);
		if (len > kl && strncasecmp(data, names[i], kl) == 0) {
			const char *v = data + kl;
			size_t vl = len - kl;
			while (vl > 0 && (*v == ' ' || *v == '\t'))
				v++, vl--;
			while (vl > 0 &&
			       (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
				vl--;
			if (vl < sizes[i]) {
				memcpy(outs[i], v, vl);
				outs[i][vl] = '\0';
			}
		}
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;
	size_t len = size * n;

	if (r->status == 0)
		curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (!ok_status(r->status)) {
		size_t k = len < ERRBODY_MAX - r->errlen ? len : ERRBODY_MAX - r->errlen;
		memcpy(r->errbody + r->errlen, data, k);
		r->errlen += k;
		r->errbody[r->errlen] = '\0';
		if (r->errlen < ERRBODY_MAX)
			return len;
		r->errbody_full = true; /* enough to say what went wrong: stop reading */
		return 0;
	}
	if (r->sink != NULL) {
		if (r->sink(data, len, r->status, r->arg) != 0) {
			r->sink_failed = true;
			return 0;
		}
		return len;
	}
	if (r->len + len > r->max) {
		r->too_big = true;
		return 0;
	}
	if (r->len + len + 1 > r->cap) {
		size_t nc = (r->len + len + 1) * 2;
		char *nb = realloc(r->buf, nc);
		if (nb == NULL)
			return 0;
		r->buf = nb;
		r->cap = nc;
	}
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	r->buf[r->len] = '\0';
	return len;
}

static int curl_once(void)
{
	static int done;

	/* Both daemons call this before starting threads (first client). */
	if (!done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return DRV_EIO;
		done = 1;
	}
	return DRV_OK;
}

int drv_oci_client_new(const struct drv_oci_ref *ref, const struct drv_oci_opts *opts,
                       struct drv_oci_client **out)
{
	struct drv_oci_client *c;

	if (ref->registry == NULL || ref->repository == NULL)
		return DRV_EINVAL;
	if (curl_once() != DRV_OK)
		return DRV_EIO;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return DRV_ENOMEM;
	if (opts != NULL)
		c->opts = *opts;
	if (c->opts.stall_s <= 0)
		c->opts.stall_s = 30;
	if (c->opts.connect_timeout_s <= 0)
		c->opts.connect_timeout_s = 10;
	c->curl = curl_easy_init();
	c->multi = curl_multi_init();
	c->repo = strdup(ref->repository);
	if (asprintf(&c->base, "%s://%s", c->opts.insecure ? "http" : "https", ref->registry) < 0)
		c->base = NULL;
	if (c->curl == NULL || c->multi == NULL || c->repo == NULL || c->base == NULL) {
		drv_oci_client_free(c);
		return DRV_ENOMEM;
	}
	*out = c;
	return DRV_OK;
}

void drv_oci_client_free(struct drv_oci_client *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi);
	free(c->base);
	free(c->repo);
	free(c->auth);
	free(c);
}

static int status_err(long status)
{
	if (status == 404)
		return DRV_ENOENT;
	if (status == 401 || status == 403)
		return DRV_EPERM;
	if (status >= 500 || status == 429 || status == 408)
		return DRV_EIO;
	return DRV_EINVAL;
}

enum stop_why { RUN_DONE, RUN_CANCELLED, RUN_LATE };

/* Run the transfer on h through the client's multi handle, looking at the
 * cancel flag and the deadline every DRV_OCI_POLL_MS (curl's own progress
 * callback may wait a second between calls when nothing moves). */
static CURLcode run(const struct drv_oci_client *c, CURL *h, enum stop_why *why)
{
	CURLcode res = CURLE_OK;
	CURLMsg *msg;
	int running = 1, left;

	*why = RUN_DONE;
	if (curl_multi_add_handle(c->multi, h) != CURLM_OK)
		return CURLE_FAILED_INIT;
	for (;;) {
		if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
			res = CURLE_FAILED_INIT;
			break;
		}
		if (running == 0)
			break;
		if (c->opts.cancel != NULL && atomic_load(c->opts.cancel)) {
			*why = RUN_CANCELLED;
			break;
		}
		if (c->opts.deadline_ms > 0 && drv_mono_ms() >= c->opts.deadline_ms) {
			*why = RUN_LATE;
			break;
		}
		curl_multi_poll(c->multi, NULL, 0, DRV_OCI_POLL_MS, NULL);
	}
	while (*why == RUN_DONE && (msg = curl_multi_info_read(c->multi, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == h)
			res = msg->data.result;
	curl_multi_remove_handle(c->multi, h);
	return *why == RUN_DONE ? res : CURLE_ABORTED_BY_CALLBACK;
}

/* Before a request: refuse at once when cancelled or out of time. */
static int may_start(const struct drv_oci_client *c, const char *url, char *err, size_t size)
{
	if (c->opts.cancel != NULL && atomic_load(c->opts.cancel)) {
		ferr(err, size, "GET %s: cancelled", url);
		return DRV_ECANCELED;
	}
	if (c->opts.deadline_ms > 0 && drv_mono_ms() >= c->opts.deadline_ms) {
		ferr(err, size, "GET %s: deadline passed", url);
		return DRV_ETIMEDOUT;
	}
	return DRV_OK;
}

/* One HTTP exchange with the handle's settings; no auth retry. */
static int perform(struct drv_oci_client *c, const char *url, bool head, uint64_t offset,
                   const char *accept, CURL *h, struct resp *r, char *err, size_t size)
{
	struct curl_slist *hdrs = NULL;
	char range[64], errbuf[CURL_ERROR_SIZE] = "";
	enum stop_why why;
	CURLcode cc;
	int rc = may_start(c, url, err, size);

	if (rc != DRV_OK)
		return rc;
	curl_easy_reset(h);
	if (accept != NULL) {
		char a[512];
		snprintf(a, sizeof(a), "Accept: %s", accept);
		hdrs = curl_slist_append(hdrs, a);
	}
	if (c != NULL && c->auth != NULL)
		hdrs = curl_slist_append(hdrs, c->auth);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_NOBODY, head ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "drover/" DROVER_VERSION);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->opts.connect_timeout_s);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->opts.stall_s);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
	if (offset > 0) {
		snprintf(range, sizeof(range), "%llu-", (unsigned long long)offset);
		curl_easy_setopt(h, CURLOPT_RANGE, range);
	}
	r->curl = h;
	r->status = 0;
	r->errbody_full = false;
	cc = run(c, h, &why);
	curl_slist_free_all(hdrs);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	if (why == RUN_CANCELLED) {
		ferr(err, size, "%s %s: cancelled", head ? "HEAD" : "GET", url);
		return DRV_ECANCELED;
	}
	if (why == RUN_LATE) {
		ferr(err, size, "%s %s: deadline passed (HTTP %ld so far)", head ? "HEAD" : "GET",
		     url, r->status);
		return DRV_ETIMEDOUT;
	}
	if (cc == CURLE_OK || r->errbody_full)
		return DRV_OK; /* a full error body: the caller reports the status */
	if (r->sink_failed) {
		ferr(err, size, "GET %s: aborted by the receiver", url);
		return DRV_EIO;
	}
	if (r->too_big) {
		ferr(err, size, "GET %s: answer larger than %zu bytes", url, r->max);
		return DRV_ETOOBIG;
	}
	ferr(err, size, "%s %s: %s%s%s", head ? "HEAD" : "GET", url,
	     cc == CURLE_OPERATION_TIMEDOUT ? "stalled: " : "", errbuf[0] ? errbuf : "",
	     errbuf[0] ? "" : curl_easy_strerror(cc));
	return cc == CURLE_OPERATION_TIMEDOUT ? DRV_ETIMEDOUT : DRV_EIO;
}

/* Value of key="..." in a challenge, into out. */
static bool challenge_param(const char *ch, const char *key, char *out, size_t size)
{
	size_t kl = strlen(key);
	const char *p = ch;

	while ((p = strcasestr(p, key)) != NULL) {
		bool boundary = p == ch || p[-1] == ' ' || p[-1] == ',';
		if (boundary && p[kl] == '=' && p[kl + 1] == '"') {
			const char *v = p + kl + 2, *e = strchr(v, '"');
			if (e == NULL || (size_t)(e - v) >= size)
				return false;
			memcpy(out, v, (size_t)(e - v));
			out[e - v] = '\0';
			return true;
		}
		p += kl;
	}
	return false;
}

static int parse_token(const char *body, size_t len, char **out)
{
	json_t *root = json_loadb(body, len, 0, NULL), *t;
	int rc = DRV_EDECODE;

	if (root == NULL)
		return DRV_EDECODE;
	t = json_object_get(root, "token");
	if (!json_is_string(t))
		t = json_object_get(root, "access_token");
	if (json_is_string(t) && json_string_length(t) > 0 && json_string_length(t) < 16384) {
		if (asprintf(out, "Authorization: Bearer %s", json_string_value(t)) < 0)
			rc = DRV_ENOMEM;
		else
			rc = DRV_OK;
	}
	json_decref(root);
	return rc;
}

static int token_url(struct drv_oci_client *c, const char *challenge, char **url, char *err,
                     size_t size)
{
	char realm[512], service[256] = "", scope[512];
	char *es, *esc;

	if (!challenge_param(challenge, "realm", realm, sizeof(realm)))
		return ferr(err, size, "registry %s: 401 with a Bearer challenge without a realm",
		            c->base);
	if (strncmp(realm, "https://", 8) != 0 &&
	    !(c->opts.insecure && !strncmp(realm, "http://", 7)))
		return ferr(err, size, "registry %s: token realm '%s' is not https", c->base,
		            realm);
	challenge_param(challenge, "service", service, sizeof(service));
	if (!challenge_param(challenge, "scope", scope, sizeof(scope)))
		snprintf(scope, sizeof(scope), "repository:%s:pull", c->repo);
	es = curl_easy_escape(c->curl, service, 0);
	esc = curl_easy_escape(c->curl, scope, 0);
	if (es == NULL || esc == NULL ||
	    asprintf(url, "%s%cservice=%s&scope=%s", realm, strchr(realm, '?') ? '&' : '?', es,
	             esc) < 0) {
		curl_free(es);
		curl_free(esc);
		return DRV_ENOMEM;
	}
	curl_free(es);
	curl_free(esc);
	return DRV_OK;
}

/* Answer a Bearer challenge: fetch a token and keep it for later requests. */
static int authenticate(struct drv_oci_client *c, const char *challenge, char *err, size_t size)
{
	struct resp r = {.max = TOKEN_MAX};
	CURL *h;
	char *url = NULL;
	int rc;

	if (strncasecmp(challenge, "Bearer ", 7) != 0)
		return ferr(err, size, "registry %s: unsupported authentication '%.60s'", c->base,
		            challenge);
	rc = token_url(c, challenge, &url, err, size);
	if (rc != DRV_OK)
		return rc;
	h = curl_easy_init();
	if (h == NULL) {
		free(url);
		return DRV_ENOMEM;
	}
	struct drv_oci_client anon = {.opts = c->opts, .multi = c->multi};
	rc = perform(&anon, url, false, 0, NULL, h, &r, err, size);
	if (rc == DRV_OK && c->opts.username != NULL)
		drv_debug("oci", "token with credentials", "user=%s", c->opts.username);
	if (rc == DRV_OK && !ok_status(r.status))
		rc = (ferr(err, size, "token request %s: HTTP %ld", url, r.status),
		      status_err(r.status));
	if (rc == DRV_OK) {
		free(c->auth);
		c->auth = NULL;
		if (parse_token(r.buf ? r.buf : "", r.len, &c->auth) != DRV_OK)
			rc = ferr(err, size, "token request %s: no token in the answer", url);
	}
	curl_easy_cleanup(h);
	free(r.buf);
	free(url);
	return rc;
}

/* Describe a non-2xx answer: "HTTP 404 MANIFEST_UNKNOWN: manifest unknown". */
static int http_failure(const char *what, const char *url, const struct resp *r, char *err,
                        size_t size)
{
	json_t *root = r->errlen ? json_loadb(r->errbody, r->errlen, 0, NULL) : NULL;
	json_t *e0 = json_array_get(json_object_get(root, "errors"), 0);
	const char *code = json_string_value(json_object_get(e0, "code"));
	const char *msg = json_string_value(json_object_get(e0, "message"));

	char cut[64] = "";

	if (r->errbody_full)
		snprintf(cut, sizeof(cut), " (error body over %d bytes: not read further)",
		         ERRBODY_MAX);
	ferr(err, size, "%s %s: HTTP %ld%s%s%s%s%s", what, url, r->status, code ? " " : "",
	     code ? code : "", msg ? ": " : "", msg ? msg : "", cut);
	json_decref(root);
	return status_err(r->status);
}

/* A request with one Bearer-challenge retry. */
static int request(struct drv_oci_client *c, const char *path, bool head, uint64_t offset,
                   const char *accept, struct resp *r, char *err, size_t size)
{
	char *url;
	int rc;

	if (asprintf(&url, "%s/v2/%s/%s", c->base, c->repo, path) < 0)
		return DRV_ENOMEM;
	for (int attempt = 0; attempt < 2; attempt++) {
		rc = perform(c, url, head, offset, accept, c->curl, r, err, size);
		if (rc != DRV_OK || r->status != 401 || attempt == 1 || r->challenge[0] == '\0')
			break;
		rc = authenticate(c, r->challenge, err, size);
		if (rc != DRV_OK)
			break;
		r->errlen = 0;
		r->len = 0;
	}
	if (rc == DRV_OK && !ok_status(r->status))
		rc = http_failure(head ? "HEAD" : "GET", url, r, err, size);
	free(url);
	return rc;
}

void drv_oci_doc_clear(struct drv_oci_doc *d)
{
	if (d == NULL)
		return;
	free(d->data);
	memset(d, 0, sizeof(*d));
}

int drv_oci_get_manifest(struct drv_oci_client *c, const char *ref, struct drv_oci_doc *out,
                         char *err, size_t size)
{
	struct resp r = {.max = DRV_OCI_MANIFEST_MAX};
	struct drv_oci_doc d = {0};
	char path[1200];
	int rc;

	snprintf(path, sizeof(path), "manifests/%s", ref);
	rc = request(c, path, false, 0, DRV_OCI_ACCEPT, &r, err, size);
	if (rc == DRV_OK && r.buf == NULL)
		rc = ferr(err, size, "GET %s/v2/%s/%s: empty manifest", c->base, c->repo, path);
	if (rc == DRV_OK)
		rc = drv_sha256_buf(r.buf, r.len, d.digest);
	if (rc == DRV_OK && strncmp(ref, "sha256:", 7) == 0 && strcmp(ref, d.digest) != 0)
		rc = (ferr(err, size, "manifest %s from %s: digest mismatch (got %s)", ref, c->base,
		           d.digest),
		      DRV_EDECODE);
	if (rc != DRV_OK) {
		free(r.buf);
		return rc;
	}
	d.data = r.buf;
	d.len = r.len;
	snprintf(d.media_type, sizeof(d.media_type), "%s", r.ctype);
	*out = d;
	return DRV_OK;
}

int drv_oci_get_blob(struct drv_oci_client *c, const char *digest, uint64_t offset,
                     drv_oci_sink_fn sink, void *arg, long *status, char *err, size_t size)
{
	struct resp r = {.sink = sink, .arg = arg};
	char path[128];
	int rc;

	if (!drv_digest_valid(digest))
		return ferr(err, size, "blob digest '%.80s' is not a sha256 digest", digest);
	snprintf(path, sizeof(path), "blobs/%s", digest);
	rc = request(c, path, false, offset, NULL, &r, err, size);
	if (rc == DRV_OK)
		*status = r.status;
	return rc;
}

int drv_oci_layout_resolve(const char *layout, const char *tag, char digest[DRV_DIGEST_STR],
                           char *err, size_t size)
{
	char path[4096], *buf = NULL;
	json_t *root = NULL, *m, *e;
	const char *found = NULL;
	size_t len, i;
	int rc;

	snprintf(path, sizeof(path), "%s/index.json", layout);
	rc = drv_read_file(path, DRV_OCI_MANIFEST_MAX, &buf, &len);
	if (rc != DRV_OK)
		return (ferr(err, size, "%s: cannot read: %s", path, drv_strerror(rc)), rc);
	root = json_loadb(buf, len, 0, NULL);
	m = json_object_get(root, "manifests");
	if (!json_is_array(m))
		rc = ferr(err, size, "%s: no 'manifests' array", path);
	json_array_foreach(m, i, e)
	{
		const char *name = json_string_value(json_object_get(
		        json_object_get(e, "annotations"), "org.opencontainers.image.ref.name"));
		const char *d = json_string_value(json_object_get(e, "digest"));
		if (d != NULL && ((tag[0] && name && strcmp(name, tag) == 0) ||
		                  (!tag[0] && json_array_size(m) == 1)))
			found = d;
	}
	if (rc == DRV_OK && (found == NULL || !drv_digest_valid(found)))
		rc = (ferr(err, size, "%s: no image tagged '%s'", path, tag), DRV_ENOENT);
	if (rc == DRV_OK)
		snprintf(digest, DRV_DIGEST_STR, "%s", found);
	json_decref(root);
	free(buf);
	return rc;
}

int drv_oci_resolve(const char *reference, const struct drv_oci_opts *opts,
                    char digest[DRV_DIGEST_STR], char *err, size_t size)
{
	struct drv_oci_client *c = NULL;
	struct drv_oci_opts o = {0};
	struct drv_oci_doc doc;
	struct drv_oci_ref ref;
	int rc = drv_oci_ref_parse(reference, &ref, err, size);

	if (opts != NULL)
		o = *opts;
	if (o.deadline_ms <= 0)
		o.deadline_ms = drv_mono_ms() + DRV_OCI_RESOLVE_MS;
	if (rc != DRV_OK)
		return rc;
	if (ref.digest[0] != '\0') {
		snprintf(digest, DRV_DIGEST_STR, "%s", ref.digest);
	} else if (ref.layout_path != NULL) {
		rc = drv_oci_layout_resolve(ref.layout_path, ref.tag, digest, err, size);
	} else {
		rc = drv_oci_client_new(&ref, &o, &c);
		if (rc == DRV_OK)
			rc = drv_oci_get_manifest(c, ref.tag[0] ? ref.tag : "latest", &doc, err,
			                          size);
		if (rc == DRV_OK) {
			snprintf(digest, DRV_DIGEST_STR, "%s", doc.digest);
			drv_oci_doc_clear(&doc);
		}
		drv_oci_client_free(c);
	}
	drv_oci_ref_clear(&ref);
	return rc;
}
