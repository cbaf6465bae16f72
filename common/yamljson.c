/*
 * yamljson.c: libyaml events -> jansson tree, plus a path -> line table.
 *
 * The loader is event driven so that an alias is refused where it appears
 * (no expansion, so no billion laughs) and so that the tree is built with a
 * bounded stack. The side table is a small open-addressing hash of path
 * strings.
 */
#include "yamljson.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "atomicfile.h"
#include "err.h"

/* ---- the path -> line table ---- */

struct yj_slot {
	char *path;
	int line;
};

struct drv_yj_lines {
	struct yj_slot *slots;
	size_t cap; /* power of two */
	size_t n;
};

static uint64_t path_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct drv_yj_lines *lines_new(void)
{
	struct drv_yj_lines *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->cap = 64;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	if (t->slots == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

static void lines_insert_slot(struct yj_slot *slots, size_t cap, char *path, int line)
{
	size_t i = path_hash(path) & (cap - 1);

	while (slots[i].path != NULL)
		i = (i + 1) & (cap - 1);
	slots[i].path = path;
	slots[i].line = line;
}

static int lines_grow(struct drv_yj_lines *t)
{
	size_t cap = t->cap * 2;
	struct yj_slot *slots = calloc(cap, sizeof(*slots));

	if (slots == NULL)
		return DRV_ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		if (t->slots[i].path != NULL)
			lines_insert_slot(slots, cap, t->slots[i].path, t->slots[i].line);
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return DRV_OK;
}

/* Paths are unique in a document (duplicate keys are refused first). */
static int lines_put(struct drv_yj_lines *t, const char *path, int line)
{
	char *copy;

	if ((t->n + 1) * 2 > t->cap && lines_grow(t) != DRV_OK)
		return DRV_ENOMEM;
	copy = strdup(path);
	if (copy == NULL)
		return DRV_ENOMEM;
	lines_insert_slot(t->slots, t->cap, copy, line);
	t->n++;
	return DRV_OK;
}

int drv_yj_line(const struct drv_yj_lines *t, const char *path)
{
	size_t i;

	if (t == NULL || path == NULL)
		return 0;
	i = path_hash(path) & (t->cap - 1);
	while (t->slots[i].path != NULL) {
		if (strcmp(t->slots[i].path, path) == 0)
			return t->slots[i].line;
		i = (i + 1) & (t->cap - 1);
	}
	return 0;
}

size_t drv_yj_count(const struct drv_yj_lines *t)
{
	return t == NULL ? 0 : t->n;
}

void drv_yj_lines_free(struct drv_yj_lines *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i].path);
	free(t->slots);
	free(t);
}

/* ---- the loader ---- */

struct frame {
	json_t *node;    /* object or array, borrowed (owned by its parent) */
	size_t path_len; /* length of this container's path */
	char *key;       /* mapping: pending key, NULL when a key comes next */
	int key_line;
};

struct loader {
	yaml_parser_t parser;
	struct frame stack[DRV_YJ_MAX_DEPTH + 1];
	int depth;
	char path[DRV_YJ_PATH_MAX];
	size_t path_len;
	size_t nodes;
	int docs;
	bool syntax; /* the error came from libyaml itself */
	json_t *root;
	struct drv_yj_lines *lines;
	struct drv_yj_error *err;
};

__attribute__((format(printf, 4, 5))) static int fail(struct loader *l, int rc, int line,
                                                      const char *fmt, ...)
{
	va_list ap;

	if (l->err != NULL && l->err->msg[0] == '\0') {
		l->err->line = line;
		va_start(ap, fmt);
		vsnprintf(l->err->msg, sizeof(l->err->msg), fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int mark_line(const yaml_event_t *ev)
{
	return (int)ev->start_mark.line + 1;
}

/* Build the path of the next child of the top frame into l->path. */
static int child_path(struct loader *l, int line, int *out_line)
{
	struct frame *f;
	int n;

	if (l->depth == 0) {
		l->path[0] = '\0';
		l->path_len = 0;
		*out_line = line;
		return DRV_OK;
	}
	f = &l->stack[l->depth - 1];
	if (json_is_object(f->node)) {
		n = snprintf(l->path + f->path_len, sizeof(l->path) - f->path_len, "%s%s",
		             f->path_len > 0 ? "." : "", f->key);
		*out_line = f->key_line;
	} else {
		n = snprintf(l->path + f->path_len, sizeof(l->path) - f->path_len, "[%zu]",
		             json_array_size(f->node));
		*out_line = line;
	}
	if (n < 0 || (size_t)n >= sizeof(l->path) - f->path_len)
		return fail(l, DRV_EDECODE, line, "nesting too deep (path too long)");
	l->path_len = f->path_len + (size_t)n;
	return DRV_OK;
}

/* Attach a new node (reference stolen) at the current position. */
static int attach(struct loader *l, json_t *node, int line)
{
	struct frame *f;
	int at, rc;

	if (node == NULL)
		return fail(l, DRV_ENOMEM, line, "out of memory");
	if (++l->nodes > DRV_YJ_MAX_NODES) {
		json_decref(node);
		return fail(l, DRV_ETOOBIG, line, "more than %d nodes", DRV_YJ_MAX_NODES);
	}
	rc = child_path(l, line, &at);
	if (rc == DRV_OK && l->lines != NULL)
		rc = lines_put(l->lines, l->path, at);
	if (rc != DRV_OK) {
		json_decref(node);
		return rc == DRV_ENOMEM ? fail(l, rc, line, "out of memory") : rc;
	}
	if (l->depth == 0) {
		l->root = node;
		return DRV_OK;
	}
	f = &l->stack[l->depth - 1];
	if (json_is_object(f->node)) {
		rc = json_object_set_new(f->node, f->key, node);
		free(f->key);
		f->key = NULL;
	} else {
		rc = json_array_append_new(f->node, node);
	}
	return rc == 0 ? DRV_OK : fail(l, DRV_ENOMEM, line, "out of memory");
}

static bool is_int(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!isdigit((unsigned char)*s))
		return false;
	while (isdigit((unsigned char)*s))
		s++;
	return *s == '\0';
}

static bool is_float(const char *s)
{
	bool digits = false;

	if (*s == '-' || *s == '+')
		s++;
	while (isdigit((unsigned char)*s)) {
		s++;
		digits = true;
	}
	if (*s == '.') {
		s++;
		while (isdigit((unsigned char)*s)) {
			s++;
			digits = true;
		}
	}
	if (!digits)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	return *s == '\0';
}

static bool in_list(const char *s, const char *const *list)
{
	for (; *list != NULL; list++) {
		if (strcmp(s, *list) == 0)
			return true;
	}
	return false;
}

static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const trues[] = {"true", "True", "TRUE", NULL};
static const char *const falses[] = {"false", "False", "FALSE", NULL};

/* A number in the core schema; NULL with *bad set when out of range. */
static json_t *number(const char *s, bool *bad)
{
	char *end;
	long long v;
	double d;

	*bad = false;
	errno = 0;
	if (is_int(s)) {
		v = strtoll(s, &end, 10);
		if (errno == 0)
			return json_integer(v);
		*bad = true;
		return NULL;
	}
	if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0o", 2) == 0) {
		v = strtoll(s + 2, &end, s[1] == 'x' ? 16 : 8);
		if (errno == 0 && end != s + 2 && *end == '\0' && isalnum((unsigned char)s[2]))
			return json_integer(v);
		*bad = errno != 0;
		return NULL;
	}
	if (is_float(s)) {
		d = strtod(s, &end);
		if (errno == 0)
			return json_real(d);
		*bad = true;
	}
	return NULL;
}

/* Resolve a plain scalar by the core schema; forced is the tag's type. */
static json_t *plain(struct loader *l, const char *s, const char *forced, int line)
{
	json_t *n;
	bool bad;

	if ((forced == NULL || strcmp(forced, "null") == 0) && in_list(s, nulls))
		return json_null();
	if (forced == NULL || strcmp(forced, "bool") == 0) {
		if (in_list(s, trues))
			return json_true();
		if (in_list(s, falses))
			return json_false();
	}
	if (forced == NULL || strcmp(forced, "int") == 0 || strcmp(forced, "float") == 0) {
		n = number(s, &bad);
		if (n != NULL)
			return n;
		if (bad) {
			fail(l, DRV_EDECODE, line, "number out of range: %.40s", s);
			return NULL;
		}
	}
	if (forced != NULL) {
		fail(l, DRV_EDECODE, line, "value does not match its tag !!%s", forced);
		return NULL;
	}
	return json_string(s);
}

/* The type an explicit tag asks for ("str", "int", ...), or an error. */
static int tag_type(struct loader *l, const yaml_event_t *ev, const char **out)
{
	static const char *const known[] = {"str", "int", "float", "bool", "null", NULL};
	const char *tag = (const char *)ev->data.scalar.tag;
	const char *prefix = "tag:yaml.org,2002:";

	*out = NULL;
	if (tag == NULL || strcmp(tag, "!") == 0)
		return DRV_OK;
	if (strncmp(tag, prefix, strlen(prefix)) == 0 && in_list(tag + strlen(prefix), known)) {
		*out = tag + strlen(prefix);
		return DRV_OK;
	}
	return fail(l, DRV_EDECODE, mark_line(ev), "unsupported tag %.60s", tag);
}

static int on_scalar(struct loader *l, yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	struct frame *f = l->depth > 0 ? &l->stack[l->depth - 1] : NULL;
	const char *type;
	json_t *node;
	int rc, line = mark_line(ev);

	if (memchr(s, '\0', len) != NULL)
		return fail(l, DRV_EDECODE, line, "NUL byte in a string");
	if (f != NULL && json_is_object(f->node) && f->key == NULL) {
		if (json_object_get(f->node, s) != NULL)
			return fail(l, DRV_EDECODE, line, "duplicate key \"%.60s\"", s);
		f->key = strdup(s);
		f->key_line = line;
		return f->key == NULL ? fail(l, DRV_ENOMEM, line, "out of memory") : DRV_OK;
	}
	rc = tag_type(l, ev, &type);
	if (rc != DRV_OK)
		return rc;
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (type && strcmp(type, "str") == 0))
		node = json_stringn(s, len);
	else
		node = plain(l, s, type, line);
	if (node == NULL)
		return fail(l, DRV_EDECODE, line, "invalid string (not UTF-8)");
	return attach(l, node, line);
}

static int on_start(struct loader *l, yaml_event_t *ev, bool mapping)
{
	struct frame *f = l->depth > 0 ? &l->stack[l->depth - 1] : NULL;
	json_t *node = mapping ? json_object() : json_array();
	int rc, line = mark_line(ev);

	if (f != NULL && json_is_object(f->node) && f->key == NULL) {
		json_decref(node);
		return fail(l, DRV_EDECODE, line, "keys must be plain strings");
	}
	if (l->depth >= DRV_YJ_MAX_DEPTH) {
		json_decref(node);
		return fail(l, DRV_EDECODE, line, "nested deeper than %d", DRV_YJ_MAX_DEPTH);
	}
	rc = attach(l, node, line);
	if (rc != DRV_OK)
		return rc;
	l->stack[l->depth].node = node;
	l->stack[l->depth].path_len = l->path_len;
	l->stack[l->depth].key = NULL;
	l->depth++;
	return DRV_OK;
}

static void on_end(struct loader *l)
{
	struct frame *f = &l->stack[--l->depth];

	free(f->key);
	f->key = NULL;
	l->path_len = l->depth > 0 ? l->stack[l->depth - 1].path_len : 0;
}

/* One event; *done set at the end of the stream. */
static int on_event(struct loader *l, yaml_event_t *ev, bool *done)
{
	switch (ev->type) {
	case YAML_STREAM_END_EVENT: *done = true; return DRV_OK;
	case YAML_DOCUMENT_START_EVENT:
		if (++l->docs > 1)
			return fail(l, DRV_EDECODE, mark_line(ev), "only one document is allowed");
		return DRV_OK;
	case YAML_ALIAS_EVENT:
		return fail(l, DRV_EDECODE, mark_line(ev), "aliases (*%.40s) are not supported",
		            (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT: return on_scalar(l, ev);
	case YAML_MAPPING_START_EVENT: return on_start(l, ev, true);
	case YAML_SEQUENCE_START_EVENT: return on_start(l, ev, false);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT: on_end(l); return DRV_OK;
	default: return DRV_OK;
	}
}

static int syntax_error(struct loader *l)
{
	const yaml_parser_t *p = &l->parser;

	l->syntax = true;
	if (p->error == YAML_MEMORY_ERROR)
		return fail(l, DRV_ENOMEM, 0, "out of memory");
	if (p->context != NULL)
		return fail(l, DRV_EDECODE, (int)p->problem_mark.line + 1, "%s %s",
		            p->problem ? p->problem : "syntax error", p->context);
	return fail(l, DRV_EDECODE, (int)p->problem_mark.line + 1, "%s",
	            p->problem ? p->problem : "syntax error");
}

static int run(struct loader *l)
{
	yaml_event_t ev;
	bool done = false;
	int rc = DRV_OK;

	while (!done && rc == DRV_OK) {
		if (!yaml_parser_parse(&l->parser, &ev))
			return syntax_error(l);
		rc = on_event(l, &ev, &done);
		yaml_event_delete(&ev);
	}
	if (rc == DRV_OK && l->root == NULL)
		rc = fail(l, DRV_EDECODE, 1, "empty document");
	return rc;
}

static void loader_cleanup(struct loader *l)
{
	while (l->depth > 0)
		on_end(l);
	yaml_parser_delete(&l->parser);
}

static bool looks_like_json(const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len && isspace((unsigned char)buf[i]))
		i++;
	return i < len && (buf[i] == '{' || buf[i] == '[');
}

/* libyaml refused a text that looks like JSON: give jansson a chance. */
static json_t *json_fallback(const char *buf, size_t len)
{
	json_error_t jerr;

	return json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
}

int drv_yj_load_buffer(const char *buf, size_t len, size_t max, json_t **out_root,
                       struct drv_yj_lines **out_lines, struct drv_yj_error *err)
{
	struct loader l;
	json_t *alt;
	int rc;

	memset(&l, 0, sizeof(l));
	l.err = err;
	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (len > max)
		return fail(&l, DRV_ETOOBIG, 0, "larger than %zu bytes", max);
	if (out_lines != NULL && (l.lines = lines_new()) == NULL)
		return fail(&l, DRV_ENOMEM, 0, "out of memory");
	if (!yaml_parser_initialize(&l.parser)) {
		drv_yj_lines_free(l.lines);
		return fail(&l, DRV_ENOMEM, 0, "out of memory");
	}
	yaml_parser_set_input_string(&l.parser, (const unsigned char *)buf, len);
	rc = run(&l);
	loader_cleanup(&l);
	if (rc == DRV_EDECODE && l.syntax && looks_like_json(buf, len) &&
	    (alt = json_fallback(buf, len))) {
		json_decref(l.root);
		drv_yj_lines_free(l.lines);
		*out_root = alt;
		if (out_lines != NULL)
			*out_lines = lines_new();
		if (out_lines != NULL && *out_lines == NULL) {
			json_decref(alt);
			return DRV_ENOMEM;
		}
		if (err != NULL)
			memset(err, 0, sizeof(*err));
		return DRV_OK;
	}
	if (rc != DRV_OK) {
		json_decref(l.root);
		drv_yj_lines_free(l.lines);
		return rc;
	}
	*out_root = l.root;
	if (out_lines != NULL)
		*out_lines = l.lines;
	return DRV_OK;
}

int drv_yj_load_file(const char *path, size_t max, json_t **out_root,
                     struct drv_yj_lines **out_lines, struct drv_yj_error *err)
{
	char *buf;
	size_t len;
	int rc;

	if (err != NULL)
		memset(err, 0, sizeof(*err));
	rc = drv_read_file(path, max, &buf, &len);
	if (rc != DRV_OK) {
		if (err != NULL && rc == DRV_ETOOBIG)
			snprintf(err->msg, sizeof(err->msg), "larger than %zu bytes", max);
		else if (err != NULL)
			snprintf(err->msg, sizeof(err->msg), "cannot read: %s",
			         rc == DRV_ENOENT ? "no such file" : strerror(errno));
		return rc;
	}
	rc = drv_yj_load_buffer(buf, len, max, out_root, out_lines, err);
	free(buf);
	return rc;
}
