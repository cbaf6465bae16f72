/* hello.c: Hello validation and its JSON form. */
#include "hello.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "err.h"
#include "wire_names.h"

static bool utf8_ok(const char *s, size_t max)
{
	json_t *j;

	if (s == NULL)
		return true;
	if (strlen(s) > max)
		return false;
	j = json_string(s); /* jansson validates UTF-8 */
	json_decref(j);
	return j != NULL;
}

static int check_labels(const Drover__Hello *h, char *why, size_t len)
{
	if (h->n_labels > HELLO_LABELS_MAX) {
		snprintf(why, len, "more than %d labels", HELLO_LABELS_MAX);
		return DRV_EINVAL;
	}
	for (size_t i = 0; i < h->n_labels; i++) {
		const Drover__KeyValue *kv = h->labels[i];
		if (kv->key == NULL || kv->key[0] == '\0' || !utf8_ok(kv->key, HELLO_LABEL_KEY) ||
		    !utf8_ok(kv->value, HELLO_LABEL_VALUE)) {
			snprintf(why, len, "label %zu is empty, too long or not UTF-8", i);
			return DRV_EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(h->labels[j]->key, kv->key) == 0) {
				snprintf(why, len, "label '%s' given twice", kv->key);
				return DRV_EINVAL;
			}
		}
	}
	return DRV_OK;
}

static bool release_ok(const Drover__Release *r)
{
	const char *s[] = {r->service,         r->version, r->digest,    r->previous_version,
	                   r->previous_digest, r->slot,    r->files_hash};

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		if (!utf8_ok(s[i], HELLO_STRING_MAX))
			return false;
	}
	return true;
}

bool hello_releases_ok(Drover__Release *const *rel, size_t n)
{
	if (n > HELLO_RELEASES_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!release_ok(rel[i]))
			return false;
	}
	return true;
}

int hello_check(const Drover__Hello *h, char *why, size_t len)
{
	const Drover__HostFacts *f = h->facts;

	if (!drv_agent_id_valid(h->agent_id)) {
		snprintf(why, len, "invalid agent id");
		return DRV_EINVAL;
	}
	if (check_labels(h, why, len) != DRV_OK)
		return DRV_EINVAL;
	if (h->n_releases > HELLO_RELEASES_MAX) {
		snprintf(why, len, "more than %d releases", HELLO_RELEASES_MAX);
		return DRV_EINVAL;
	}
	for (size_t i = 0; i < h->n_releases; i++) {
		if (!release_ok(h->releases[i])) {
			snprintf(why, len, "release %zu has a string too long or not UTF-8", i);
			return DRV_EINVAL;
		}
	}
	if (!utf8_ok(h->agent_version, 64) || !utf8_ok(h->enroll_token, 256) ||
	    (f != NULL && (!utf8_ok(f->hostname, 255) || !utf8_ok(f->os, 255) ||
	                   !utf8_ok(f->arch, 64) || !utf8_ok(f->boot_id, 64)))) {
		snprintf(why, len, "a string is too long or not UTF-8");
		return DRV_EINVAL;
	}
	return DRV_OK;
}

static json_t *jstr(const char *s)
{
	return json_string(s ? s : "");
}

static char *dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(j);
	return s;
}

static json_t *release_core_json(const Drover__Release *r)
{
	return json_pack("{s:o, s:o, s:o, s:s, s:o, s:o, s:b, s:I, s:o}", "service",
	                 jstr(r->service), "version", jstr(r->version), "digest", jstr(r->digest),
	                 "state", drv_release_state_name(r->state), "previous_version",
	                 jstr(r->previous_version), "previous_digest", jstr(r->previous_digest),
	                 "healthy", (int)r->healthy, "port", (json_int_t)r->port, "slot",
	                 jstr(r->slot));
}

/* The drift fields, when the agent sends them. */
static json_t *release_json(const Drover__Release *r)
{
	json_t *o = release_core_json(r);

	if (o != NULL && (r->alive_since_ms > 0 || r->restarts > 0 ||
	                  (r->files_hash != NULL && r->files_hash[0] != '\0'))) {
		json_object_set_new(o, "alive_since_ms",
		                    json_integer((json_int_t)r->alive_since_ms));
		json_object_set_new(o, "restarts", json_integer((json_int_t)r->restarts));
		json_object_set_new(o, "files_hash", jstr(r->files_hash));
	}
	return o;
}

char *hello_releases_json(Drover__Release *const *rel, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++) {
		if (json_array_append_new(a, release_json(rel[i])) != 0) {
			json_decref(a);
			a = NULL;
		}
	}
	return dump(a);
}

static char *labels_json(const Drover__Hello *h)
{
	json_t *o = json_object();

	for (size_t i = 0; o != NULL && i < h->n_labels; i++) {
		if (json_object_set_new(o, h->labels[i]->key, jstr(h->labels[i]->value)) != 0) {
			json_decref(o);
			o = NULL;
		}
	}
	return dump(o);
}

static char *facts_json(const Drover__HostFacts *f)
{
	if (f == NULL)
		return dump(json_object());
	return dump(json_pack("{s:o, s:o, s:o, s:I, s:I, s:o}", "hostname", jstr(f->hostname), "os",
	                      jstr(f->os), "arch", jstr(f->arch), "cpus", (json_int_t)f->cpus,
	                      "mem_bytes", (json_int_t)f->mem_bytes, "boot_id", jstr(f->boot_id)));
}

int hello_to_json(const Drover__Hello *h, struct hello_json *out)
{
	struct hello_json j = {0};

	j.labels = labels_json(h);
	j.facts = facts_json(h->facts);
	j.releases = hello_releases_json(h->releases, h->n_releases);
	if (j.labels == NULL || j.facts == NULL || j.releases == NULL) {
		hello_json_free(&j);
		return DRV_ENOMEM;
	}
	*out = j;
	return DRV_OK;
}

void hello_json_free(struct hello_json *j)
{
	if (j == NULL)
		return;
	free(j->labels);
	free(j->facts);
	free(j->releases);
	memset(j, 0, sizeof(*j));
}
