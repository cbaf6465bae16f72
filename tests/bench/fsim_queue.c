/*
 * fsim_queue.c: queue one RUN_HOOK instruction per agent through droverd's
 * admin API (POST /v1/agents/{id}/instructions), K requests in flight on
 * kept-alive connections (libcurl multi).
 */
#include "fsim_queue.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

struct slot {
	CURL *h;
	struct curl_slist *hdr;
	char url[512];
	char body[512];
	size_t idx;
};

static size_t discard(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return sz * n;
}

static int slot_setup(struct slot *s, const char *token)
{
	char auth[600];

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	s->h = curl_easy_init();
	s->hdr = curl_slist_append(NULL, auth);
	if (s->hdr != NULL)
		s->hdr = curl_slist_append(s->hdr, "Content-Type: application/json");
	if (s->h == NULL || s->hdr == NULL)
		return DRV_ENOMEM;
	curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hdr);
	curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, 60000L);
	curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->h, CURLOPT_PROTOCOLS_STR, "http,https");
	return DRV_OK;
}

static void slot_start(CURLM *m, struct slot *s, const struct fsim_queue_req *q, size_t idx)
{
	s->idx = idx;
	snprintf(s->url, sizeof(s->url), "%s/v1/agents/%s/instructions", q->api, q->ids[idx]);
	snprintf(s->body, sizeof(s->body),
	         "{\"step_id\": \"%s-%zu\", \"run\": [\"/bin/true\"], \"ttl_ms\": 600000}",
	         q->step_prefix, idx);
	curl_easy_setopt(s->h, CURLOPT_URL, s->url);
	curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, s->body);
	curl_multi_add_handle(m, s->h);
}

/* Collect finished transfers, restart their slots on the next agents;
 * returns how many were restarted. */
static size_t reap(CURLM *m, const struct fsim_queue_req *q, size_t *next, size_t *failed)
{
	size_t restarted = 0;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(m, &left)) != NULL) {
		struct slot *s = NULL;
		long code = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
		if (msg->data.result != CURLE_OK || (code != 201 && code != 200)) {
			if (*failed < 5)
				fprintf(stderr, "fleetsim: queue %s: %s (HTTP %ld)\n",
				        q->ids[s->idx], curl_easy_strerror(msg->data.result), code);
			(*failed)++;
		}
		curl_multi_remove_handle(m, s->h);
		if (*next < q->n) {
			slot_start(m, s, q, (*next)++);
			restarted++;
		}
	}
	return restarted;
}

int fsim_queue_all(const struct fsim_queue_req *q, size_t *failed_out)
{
	size_t k = q->parallel > 0 ? q->parallel : 8, next = 0, failed = 0;
	struct slot *slots = calloc(k, sizeof(*slots));
	CURLM *m = curl_multi_init();
	int active = 0, rc = DRV_OK;

	if (slots == NULL || m == NULL) {
		rc = DRV_ENOMEM;
		goto out;
	}
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)k);
	for (size_t i = 0; i < k && rc == DRV_OK; i++) {
		rc = slot_setup(&slots[i], q->token);
		if (rc == DRV_OK)
			curl_easy_setopt(slots[i].h, CURLOPT_PRIVATE, (char *)&slots[i]);
		if (rc == DRV_OK && next < q->n)
			slot_start(m, &slots[i], q, next++);
	}
	while (rc == DRV_OK) {
		curl_multi_perform(m, &active);
		if (reap(m, q, &next, &failed) > 0)
			continue; /* start the new transfers at once */
		if (active == 0)
			break;
		curl_multi_poll(m, NULL, 0, 1000, NULL);
	}
	*failed_out = failed;
out:
	for (size_t i = 0; slots != NULL && i < k; i++) {
		if (slots[i].h != NULL) {
			curl_multi_remove_handle(m, slots[i].h);
			curl_easy_cleanup(slots[i].h);
		}
		curl_slist_free_all(slots[i].hdr);
	}
	free(slots);
	if (m != NULL)
		curl_multi_cleanup(m);
	return rc;
}
