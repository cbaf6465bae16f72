/* enroll_rules.c: enrollment token label constraints (see enroll_rules.h). */
#include "enroll_rules.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hello.h"

static int add_pair(json_t *o, const char *kv, char *why, size_t len)
{
	const char *eq = strchr(kv, '=');
	char key[HELLO_LABEL_KEY + 1];
	size_t klen = eq ? (size_t)(eq - kv) : 0;
	json_t *val, *arr, *kj;

	if (eq == NULL || klen == 0 || klen > HELLO_LABEL_KEY || eq[1] == '\0' ||
	    strlen(eq + 1) > HELLO_LABEL_VALUE) {
		snprintf(why, len, "'%.80s' is not KEY=VALUE (key 1-%d, value 1-%d bytes)", kv,
		         HELLO_LABEL_KEY, HELLO_LABEL_VALUE);
		return DRV_EINVAL;
	}
	memcpy(key, kv, klen);
	key[klen] = '\0';
	val = json_string(eq + 1);
	kj = json_string(key); /* jansson checks UTF-8 */
	json_decref(kj);
	if (val == NULL || kj == NULL) {
		json_decref(val);
		snprintf(why, len, "a label rule is not UTF-8");
		return DRV_EINVAL;
	}
	arr = json_object_get(o, key);
	if (arr == NULL) {
		arr = json_array();
		if (arr == NULL || json_object_set_new(o, key, arr) != 0) {
			json_decref(val);
			return DRV_ENOMEM;
		}
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		if (json_equal(json_array_get(arr, i), val)) {
			json_decref(val);
			return DRV_OK;
		}
	}
	return json_array_append_new(arr, val) == 0 ? DRV_OK : DRV_ENOMEM;
}

int enroll_rules_parse(const char *const *kv, size_t n, char **out, char *why, size_t len)
{
	json_t *o;
	char *text;
	int rc = DRV_OK;

	if (n > ENROLL_RULES_MAX) {
		snprintf(why, len, "more than %d label rules", ENROLL_RULES_MAX);
		return DRV_EINVAL;
	}
	o = json_object();
	if (o == NULL)
		return DRV_ENOMEM;
	for (size_t i = 0; rc == DRV_OK && i < n; i++)
		rc = kv[i] != NULL ? add_pair(o, kv[i], why, len) : DRV_EINVAL;
	text = rc == DRV_OK ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (rc != DRV_OK)
		return rc;
	if (text == NULL)
		return DRV_ENOMEM;
	*out = text;
	return DRV_OK;
}

static bool one_of(const json_t *allowed, const json_t *have)
{
	size_t i;
	const json_t *v;

	if (!json_is_string(have))
		return false;
	json_array_foreach(allowed, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), json_string_value(have)) == 0)
			return true;
	}
	return false;
}

int enroll_rules_allow(const char *rules_json, const char *labels_json, char *why, size_t len)
{
	json_t *rules = json_loads(rules_json ? rules_json : "{}", JSON_REJECT_DUPLICATES, NULL);
	json_t *labels = json_loads(labels_json ? labels_json : "{}", JSON_REJECT_DUPLICATES, NULL);
	const char *key;
	json_t *allowed;
	int rc = DRV_OK;

	if (!json_is_object(rules) || !json_is_object(labels)) {
		snprintf(why, len, "label rules or labels are not a JSON object");
		rc = DRV_EINVAL;
		goto out;
	}
	json_object_foreach(rules, key, allowed)
	{
		json_t *have = json_object_get(labels, key);

		if (!json_is_array(allowed) || !one_of(allowed, have)) {
			snprintf(why, len, "label %.63s=%.100s is not allowed by the token", key,
			         json_is_string(have) ? json_string_value(have) : "(none)");
			rc = DRV_EPERM;
			break;
		}
	}
out:
	json_decref(rules);
	json_decref(labels);
	return rc;
}
