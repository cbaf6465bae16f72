/*
 * prom_query.c: instant queries against Prometheus and the verdict of a
 * check (prom_query.h). libcurl with a total timeout per query; the answer
 * is capped before it is parsed.
 */
#include "prom_query.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* ---- the answer ---- */

static void add_sample(struct drv_prom_result *r, const json_t *pair)
{
	const char *s = json_string_value(json_array_get(pair, 1));
	char *end;
	double v;

	if (s == NULL)
		return;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || !isfinite(v))
		return; /* NaN, +Inf: no usable value */
	if (r->n == 0) {
		r->lo = r->hi = r->first = v;
	} else {
		r->lo = v < r->lo ? v : r->lo;
		r->hi = v > r->hi ? v : r->hi;
	}
	r->n++;
}

static bool is_sample(const json_t *p)
{
	return json_is_array(p) && json_array_size(p) == 2 &&
	       json_is_number(json_array_get(p, 0)) && json_is_string(json_array_get(p, 1));
}

static int read_data(const json_t *data, struct drv_prom_result *r, char *why, size_t cap)
{
	const char *type = json_string_value(json_object_get(data, "resultType"));
	const json_t *res = json_object_get(data, "result");
	size_t i;
	json_t *item;

	if (type == NULL || res == NULL) {
		snprintf(why, cap, "the answer has no data.resultType or data.result");
		return DRV_EINVAL;
	}
	if (strcmp(type, "scalar") == 0) {
		if (!is_sample(res)) {
			snprintf(why, cap, "a scalar result is not [time, \"value\"]");
			return DRV_EINVAL;
		}
		add_sample(r, res);
		return DRV_OK;
	}
	if (strcmp(type, "vector") != 0) {
		snprintf(why, cap, "the query gives a %.20s; a check needs a vector or a scalar",
		         type);
		return DRV_EINVAL;
	}
	if (!json_is_array(res)) {
		snprintf(why, cap, "a vector result is not a list");
		return DRV_EINVAL;
	}
	json_array_foreach(res, i, item)
	{
		const json_t *v = json_object_get(item, "value");
		if (!json_is_object(item) || !is_sample(v)) {
			snprintf(why, cap, "sample %zu of the vector has no [time, \"value\"]", i);
			return DRV_EINVAL;
		}
		add_sample(r, v);
	}
	return DRV_OK;
}

int drv_prom_parse(const char *body, size_t len, struct drv_prom_result *out, char *why,
                   size_t why_cap)
{
	struct drv_prom_result r = {0};
	json_error_t jerr;
	json_t *root;
	const char *status, *msg;
	int rc;

	if (len > DRV_PROM_BODY_MAX) {
		snprintf(why, why_cap, "the answer is over %u bytes", DRV_PROM_BODY_MAX);
		return DRV_EINVAL;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(why, why_cap, "the answer is not JSON: %.100s", jerr.text);
		return DRV_EINVAL;
	}
	status = json_string_value(json_object_get(root, "status"));
	msg = json_string_value(json_object_get(root, "error"));
	if (status == NULL || strcmp(status, "success") != 0) {
		snprintf(why, why_cap, "Prometheus: %.200s", msg ? msg : "status is not success");
		json_decref(root);
		return DRV_EINVAL;
	}
	rc = read_data(json_object_get(root, "data"), &r, why, why_cap);
	json_decref(root);
	if (rc == DRV_OK)
		*out = r;
	return rc;
}

/* ---- the query ---- */

struct body {
	char *p;
	size_t len, cap;
	bool over;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = size * n;

	if (b->len + len > DRV_PROM_BODY_MAX) {
		b->over = true;
		return 0;
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;
		while (cap < b->len + len + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (np == NULL)
			return 0;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	b->p[b->len] = '\0';
	return len;
}

static char *query_url(CURL *c, const struct drv_prom_server *sv, const char *query)
{
	char *enc = curl_easy_escape(c, query, 0), *url = NULL;

	if (enc == NULL)
		return NULL;
	if (asprintf(&url, "%s/api/v1/query?query=%s", sv->url, enc) < 0)
		url = NULL;
	curl_free(enc);
	return url;
}

static int perform(CURL *c, const struct drv_prom_server *sv, struct body *b, long *status,
                   char *why, size_t cap)
{
	struct curl_slist *h = NULL;
	char *auth = NULL;
	CURLcode cc;

	if (sv->token != NULL) {
		if (asprintf(&auth, "Authorization: Bearer %s", sv->token) < 0)
			return DRV_ENOMEM;
		h = curl_slist_append(NULL, auth);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	}
	if (sv->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, sv->ca_file);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)sv->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)sv->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(h);
	if (auth != NULL)
		memset(auth, 0, strlen(auth));
	free(auth);
	if (cc != CURLE_OK) {
		snprintf(why, cap, "prometheus %s: %s", sv->name,
		         b->over ? "the answer is over 1 MiB" : curl_easy_strerror(cc));
		return DRV_EIO;
	}
	return DRV_OK;
}

int drv_prom_query(const struct drv_prom_server *sv, const char *query, struct drv_prom_result *out,
                   char *why, size_t why_cap)
{
	struct body b = {0};
	CURL *c = curl_easy_init();
	char *url = c ? query_url(c, sv, query) : NULL;
	long status = 0;
	int rc = url ? DRV_OK : DRV_ENOMEM;

	if (rc == DRV_OK) {
		curl_easy_setopt(c, CURLOPT_URL, url);
		rc = perform(c, sv, &b, &status, why, why_cap);
	}
	if (rc == DRV_OK && status == 400) {
		char pw[200] = "";
		struct drv_prom_result r;
		drv_prom_parse(b.p ? b.p : "", b.len, &r, pw, sizeof(pw));
		snprintf(why, why_cap, "prometheus %s refused the query: %s", sv->name,
		         pw[0] ? pw : "HTTP 400");
		rc = DRV_EINVAL;
	} else if (rc == DRV_OK && status != 200) {
		snprintf(why, why_cap, "prometheus %s: HTTP %ld", sv->name, status);
		rc = DRV_EIO;
	} else if (rc == DRV_OK &&
	           drv_prom_parse(b.p ? b.p : "", b.len, out, why, why_cap) != DRV_OK) {
		rc = DRV_EIO;
	}
	free(url);
	free(b.p);
	if (c != NULL)
		curl_easy_cleanup(c);
	if (rc == DRV_ENOMEM)
		snprintf(why, why_cap, "out of memory");
	return rc;
}

/* ---- the verdict ---- */

/* The sample the condition is judged by: the worst one for it. */
static double judged(const struct drv_plan_check *k, const struct drv_prom_result *r)
{
	switch (k->cond) {
	case DRV_COND_LT:
	case DRV_COND_LE: return r->hi;
	case DRV_COND_GT:
	case DRV_COND_GE: return r->lo;
	default:
		if (!drv_plan_cond_holds(k->cond, k->a, k->b, r->lo))
			return r->lo;
		return r->hi;
	}
}

enum drv_plan_outcome drv_prom_verdict(const struct drv_plan_check *k, int rc,
                                       const struct drv_prom_result *res, const char *why,
                                       double *value, char *text, size_t text_cap)
{
	char cond[96];
	double v;

	drv_plan_cond_format(k->cond, k->a, k->b, cond, sizeof(cond));
	*value = NAN;
	if (rc != DRV_OK) {
		snprintf(text, text_cap, "query error (%s): %.200s",
		         drv_plan_outcome_name(k->on_error), why ? why : "");
		return k->on_error;
	}
	if (res->n == 0) {
		snprintf(text, text_cap, "empty result (%s), want %s",
		         drv_plan_outcome_name(k->on_empty), cond);
		return k->on_empty;
	}
	v = judged(k, res);
	*value = v;
	snprintf(text, text_cap, "%g (%zu series), want %s", v, res->n, cond);
	return drv_plan_cond_holds(k->cond, k->a, k->b, v) ? DRV_OUTCOME_PASS : DRV_OUTCOME_FAIL;
}
