/* json_check.c: JSON body parsing with duplicate-key refusal, and strict field checks. */
#include "json_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

void drv_json_error_set(struct drv_json_error *err, const char *code, const char *field,
                        const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	memset(err, 0, sizeof(*err));
	snprintf(err->code, sizeof(err->code), "%s", code);
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

int drv_json_parse(const char *buf, size_t len, json_t **out, struct drv_json_error *err)
{
	json_error_t je;
	json_t *v;

	v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!v) {
		drv_json_error_set(err, "invalid-json", NULL,
		                   "invalid JSON at line %d column %d: %s", je.line, je.column,
		                   je.text);
		if (err)
			err->line = je.line > 0 ? je.line : 0;
		return DRV_EDECODE;
	}
	*out = v;
	return DRV_OK;
}

static const char *type_name(enum drv_jtype t)
{
	switch (t) {
	case DRV_J_STRING: return "a string";
	case DRV_J_INT: return "an integer";
	case DRV_J_NUMBER: return "a number";
	case DRV_J_BOOL: return "a boolean";
	case DRV_J_OBJECT: return "an object";
	case DRV_J_ARRAY: return "an array";
	default: return "a value";
	}
}

static bool type_ok(const json_t *v, enum drv_jtype t)
{
	switch (t) {
	case DRV_J_STRING: return json_is_string(v);
	case DRV_J_INT: return json_is_integer(v);
	case DRV_J_NUMBER: return json_is_number(v);
	case DRV_J_BOOL: return json_is_boolean(v);
	case DRV_J_OBJECT: return json_is_object(v);
	case DRV_J_ARRAY: return json_is_array(v);
	default: return true;
	}
}

static size_t size_of(const json_t *v)
{
	if (json_is_string(v))
		return json_string_length(v);
	if (json_is_array(v))
		return json_array_size(v);
	if (json_is_object(v))
		return json_object_size(v);
	return 0;
}

static const struct drv_json_field *find_field(const struct drv_json_field *fields, size_t n,
                                               const char *key)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(fields[i].name, key) == 0)
			return &fields[i];
	}
	return NULL;
}

static int check_value(const struct drv_json_field *f, const json_t *v, struct drv_json_error *err)
{
	size_t max = f->max ? f->max : DRV_JSON_DEFAULT_MAX;

	if (!type_ok(v, f->type)) {
		drv_json_error_set(err, "wrong-type", f->name, "field \"%s\" must be %s", f->name,
		                   type_name(f->type));
		return DRV_EINVAL;
	}
	if (size_of(v) > max) {
		drv_json_error_set(err, "too-long", f->name, "field \"%s\" is longer than %zu",
		                   f->name, max);
		return DRV_EINVAL;
	}
	return DRV_OK;
}

int drv_json_check(const json_t *obj, const struct drv_json_field *fields, size_t n,
                   struct drv_json_error *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj)) {
		drv_json_error_set(err, "not-an-object", NULL, "the body must be a JSON object");
		return DRV_EINVAL;
	}
	json_object_foreach((json_t *)obj, key, v)
	{
		const struct drv_json_field *f = find_field(fields, n, key);
		if (!f) {
			drv_json_error_set(err, "unknown-field", key, "unknown field \"%.100s\"",
			                   key);
			return DRV_EINVAL;
		}
		if (json_is_null(v))
			continue; /* absent; required fields are checked below */
		if (check_value(f, v, err) != DRV_OK)
			return DRV_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *v2 = json_object_get(obj, fields[i].name);
		if (fields[i].required && (!v2 || json_is_null(v2))) {
			drv_json_error_set(err, "missing-field", fields[i].name,
			                   "field \"%s\" is required", fields[i].name);
			return DRV_EINVAL;
		}
	}
	return DRV_OK;
}
