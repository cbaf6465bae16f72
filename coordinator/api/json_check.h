/*
 * json_check.h: parsing and strict validation of JSON request bodies.
 *
 * The API refuses what it does not understand: a body is parsed with
 * duplicate keys rejected, and an object is checked against a table of the
 * fields it may have (name, type, required, size cap). Unknown fields,
 * missing fields and wrong types are errors that name the field. Pure: no
 * I/O; the HTTP server and the fuzz target use it.
 */
#ifndef DRV_JSON_CHECK_H
#define DRV_JSON_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum drv_jtype {
	DRV_J_ANY = 0,
	DRV_J_STRING,
	DRV_J_INT,
	DRV_J_NUMBER, /* integer or real */
	DRV_J_BOOL,
	DRV_J_OBJECT,
	DRV_J_ARRAY,
};

/* One allowed field of an object. max: for strings the maximum length in
 * bytes, for arrays and objects the maximum number of members; 0 means the
 * default cap DRV_JSON_DEFAULT_MAX. */
struct drv_json_field {
	const char *name;
	enum drv_jtype type;
	bool required;
	size_t max;
};

#define DRV_JSON_DEFAULT_MAX 4096

/* What went wrong, for the API's error shape. code is a stable token:
 * "invalid-json", "not-an-object", "unknown-field", "missing-field",
 * "wrong-type", "too-long". line is 0 when it does not apply. */
struct drv_json_error {
	char code[32];
	char field[128];
	char message[256];
	int line;
};

/* Parse len bytes (need not be NUL-terminated) into *out (caller owns the
 * reference). Duplicate object keys are refused. DRV_EDECODE with err
 * filled (code "invalid-json", line and column in the message) on failure. */
int drv_json_parse(const char *buf, size_t len, json_t **out, struct drv_json_error *err);

/* Check that obj is an object whose keys are all among fields[0..n), that
 * every required field is present, and that every present field has its
 * type and size. DRV_EINVAL with err filled on the first problem found.
 * A JSON null counts as absent for optional fields. */
int drv_json_check(const json_t *obj, const struct drv_json_field *fields, size_t n,
                   struct drv_json_error *err);

/* Fill err (for use by callers that add their own checks). */
void drv_json_error_set(struct drv_json_error *err, const char *code, const char *field,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
