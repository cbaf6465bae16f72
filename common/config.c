/* config.c: the options-table YAML reader and writer (libyaml event API). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "atomicfile.h"
#include "clock.h"
#include "err.h"
#include "log.h"

#define PATH_KEY_MAX 128

struct reader {
	yaml_parser_t parser;
	const struct drv_cfg_opt *opts;
	size_t n_opts;
	const char *name;
	const char *base_dir;
	void *out;
	size_t *seen_line; /* per option: line it was set on, 0 = not set */
	struct drv_cfg_diag *diag;
	bool fatal; /* the YAML stream is broken: stop reading */
};

static void diag_vadd(struct drv_cfg_diag *d, const char *name, size_t line, const char *fmt,
                      va_list ap)
{
	char *m;
	int n;

	if (d->n >= DRV_CFG_DIAG_MAX) {
		d->dropped++;
		return;
	}
	m = d->msg[d->n++];
	n = line > 0 ? snprintf(m, DRV_CFG_DIAG_LEN, "%s:%zu: ", name, line)
	             : snprintf(m, DRV_CFG_DIAG_LEN, "%s: ", name);
	if (n > 0 && n < DRV_CFG_DIAG_LEN)
		vsnprintf(m + n, DRV_CFG_DIAG_LEN - (size_t)n, fmt, ap);
}

__attribute__((format(printf, 4, 5))) static void diag_add(struct drv_cfg_diag *d, const char *name,
                                                           size_t line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(d, name, line, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 3, 4))) static void rerr(struct reader *r, size_t line,
                                                       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(r->diag, r->name, line, fmt, ap);
	va_end(ap);
}

void drv_cfg_diag_print(const struct drv_cfg_diag *diag)
{
	for (size_t i = 0; i < diag->n; i++)
		fprintf(stderr, "%s\n", diag->msg[i]);
	if (diag->dropped > 0)
		fprintf(stderr, "(%zu more errors)\n", diag->dropped);
}

void drv_cfg_diag_add(struct drv_cfg_diag *diag, const char *path, const char *fmt, ...)
{
	char *m;
	va_list ap;
	int k;

	if (diag->n >= DRV_CFG_DIAG_MAX) {
		diag->dropped++;
		return;
	}
	m = diag->msg[diag->n++];
	k = snprintf(m, DRV_CFG_DIAG_LEN, "%s: ", path);
	if (k < 0 || k >= DRV_CFG_DIAG_LEN)
		return;
	va_start(ap, fmt);
	vsnprintf(m + k, DRV_CFG_DIAG_LEN - (size_t)k, fmt, ap);
	va_end(ap);
}

int drv_cfg_load_checked(const struct drv_cfg_opt *opts, size_t n_opts, const char *path, void *out,
                         size_t out_size, struct drv_cfg_diag *diag, drv_cfg_cross_fn cross)
{
	int rc;

	memset(out, 0, out_size);
	rc = drv_cfg_load_file(opts, n_opts, path, out, diag);
	if (rc != DRV_OK)
		return rc;
	if (cross != NULL)
		cross(path, out, diag);
	if (diag->n > 0) {
		drv_cfg_free(opts, n_opts, out);
		return DRV_EINVAL;
	}
	return DRV_OK;
}

int drv_cfg_tree_load(const char *buf, size_t len, const char *file, json_t **root,
                      struct drv_yj_lines **lines, struct drv_cfg_diag *diag)
{
	struct drv_yj_error err;
	int rc = drv_yj_load_buffer(buf, len, DRV_CFG_FILE_MAX, root, lines, &err);

	if (rc != DRV_OK) {
		if (diag->n < DRV_CFG_DIAG_MAX)
			snprintf(diag->msg[diag->n++], DRV_CFG_DIAG_LEN, "%.60s:%d: %.200s", file,
			         err.line, err.msg);
		return rc == DRV_ENOMEM ? rc : DRV_EINVAL;
	}
	return DRV_OK;
}

int drv_cfg_check_log_level(const void *v, char *why, size_t why_len)
{
	enum drv_log_level l;

	if (drv_log_parse_level(*(char *const *)v, &l) != DRV_OK) {
		snprintf(why, why_len, "must be debug, info, warn or error");
		return DRV_EINVAL;
	}
	return DRV_OK;
}

bool drv_cfg_link_url_ok(const char *url)
{
	return strncmp(url, "tcp://", 6) == 0 || strncmp(url, "tls+tcp://", 10) == 0;
}

/* ---- lists ---- */

int drv_strlist_add(struct drv_strlist *l, const char *s)
{
	char **v;
	char *copy = strdup(s);

	if (copy == NULL)
		return DRV_ENOMEM;
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (v == NULL) {
		free(copy);
		return DRV_ENOMEM;
	}
	v[l->n++] = copy;
	l->v = v;
	return DRV_OK;
}

void drv_strlist_free(struct drv_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int drv_kvlist_add(struct drv_kvlist *l, const char *key, const char *value)
{
	struct drv_kv *v;
	char *k = strdup(key), *val = strdup(value);

	if (k == NULL || val == NULL)
		goto out_nomem;
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (v == NULL)
		goto out_nomem;
	v[l->n].key = k;
	v[l->n].value = val;
	l->n++;
	l->v = v;
	return DRV_OK;
out_nomem:
	free(k);
	free(val);
	return DRV_ENOMEM;
}

void drv_kvlist_free(struct drv_kvlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

const char *drv_kvlist_get(const struct drv_kvlist *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].key, key) == 0)
			return l->v[i].value;
	}
	return NULL;
}

/* ---- values ---- */

static void *field(void *cfg, const struct drv_cfg_opt *o)
{
	return (char *)cfg + o->offset;
}

static void free_value(void *cfg, const struct drv_cfg_opt *o)
{
	void *f = field(cfg, o);

	switch (o->type) {
	case DRV_CFG_STR:
	case DRV_CFG_PATH:
		free(*(char **)f);
		*(char **)f = NULL;
		break;
	case DRV_CFG_STRLIST:
	case DRV_CFG_PATHLIST: drv_strlist_free(f); break;
	case DRV_CFG_KV: drv_kvlist_free(f); break;
	default: break;
	}
}

void drv_cfg_free(const struct drv_cfg_opt *opts, size_t n_opts, void *cfg)
{
	for (size_t i = 0; i < n_opts; i++)
		free_value(cfg, &opts[i]);
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no",
	                                                                       "off"};

	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return DRV_OK;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return DRV_OK;
		}
	}
	return DRV_EINVAL;
}

static int parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return DRV_EINVAL;
	*out = v;
	return DRV_OK;
}

/* Join base_dir and a relative path; absolute paths are copied as they are. */
static char *resolve_path(const char *base_dir, const char *p)
{
	char *out;
	size_t n;

	if (p[0] == '/' || p[0] == '\0' || base_dir == NULL)
		return strdup(p);
	n = strlen(base_dir) + strlen(p) + 2;
	out = malloc(n);
	if (out != NULL)
		snprintf(out, n, "%s/%s", base_dir, p);
	return out;
}

static int check_number(struct reader *r, const struct drv_cfg_opt *o, size_t line, int64_t v)
{
	if (o->min == 0 && o->max == 0)
		return DRV_OK;
	if (v < o->min || v > o->max) {
		rerr(r, line, "%s: %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]%s",
		     o->name, v, o->min, o->max,
		     o->type == DRV_CFG_DURATION ? " (milliseconds)" : "");
		return DRV_EINVAL;
	}
	return DRV_OK;
}

static int set_string(struct reader *r, const struct drv_cfg_opt *o, size_t line, const char *s)
{
	char *v;

	if (o->max > 0 && (int64_t)strlen(s) > o->max) {
		rerr(r, line, "%s: longer than %" PRId64 " characters", o->name, o->max);
		return DRV_EINVAL;
	}
	v = o->type == DRV_CFG_PATH ? resolve_path(r->base_dir, s) : strdup(s);
	if (v == NULL)
		return DRV_ENOMEM;
	free(*(char **)field(r->out, o));
	*(char **)field(r->out, o) = v;
	return DRV_OK;
}

static int set_scalar(struct reader *r, const struct drv_cfg_opt *o, size_t line, const char *s)
{
	void *f = field(r->out, o);
	int64_t v;
	bool b;

	switch (o->type) {
	case DRV_CFG_STR:
	case DRV_CFG_PATH: return set_string(r, o, line, s);
	case DRV_CFG_BOOL:
		if (parse_bool(s, &b) != DRV_OK) {
			rerr(r, line, "%s: expected true or false, got '%s'", o->name, s);
			return DRV_EINVAL;
		}
		*(bool *)f = b;
		return DRV_OK;
	case DRV_CFG_INT:
		if (parse_int(s, &v) != DRV_OK) {
			rerr(r, line, "%s: expected an integer, got '%s'", o->name, s);
			return DRV_EINVAL;
		}
		break;
	case DRV_CFG_DURATION:
		if (drv_parse_duration_ms(s, &v) != DRV_OK) {
			rerr(r, line, "%s: expected a duration like 250ms, 2s or 10m, got '%s'",
			     o->name, s);
			return DRV_EINVAL;
		}
		break;
	default: rerr(r, line, "%s: expected a list or a mapping", o->name); return DRV_EINVAL;
	}
	if (check_number(r, o, line, v) != DRV_OK)
		return DRV_EINVAL;
	*(int64_t *)f = v;
	return DRV_OK;
}

static int list_add(struct reader *r, const struct drv_cfg_opt *o, size_t line, const char *s)
{
	struct drv_strlist *l = field(r->out, o);
	int64_t cap = o->max > 0 ? o->max : DRV_CFG_LIST_MAX;
	char *p;
	int rc;

	if ((int64_t)l->n >= cap) {
		rerr(r, line, "%s: more than %" PRId64 " entries", o->name, cap);
		return DRV_EINVAL;
	}
	if (o->type != DRV_CFG_PATHLIST)
		return drv_strlist_add(l, s);
	p = resolve_path(r->base_dir, s);
	if (p == NULL)
		return DRV_ENOMEM;
	rc = drv_strlist_add(l, p);
	free(p);
	return rc;
}

/* ---- events ---- */

static const char *event_what(yaml_event_type_t t)
{
	switch (t) {
	case YAML_SCALAR_EVENT: return "a scalar";
	case YAML_SEQUENCE_START_EVENT: return "a list";
	case YAML_MAPPING_START_EVENT: return "a mapping";
	default: return "something else";
	}
}

static size_t ev_line(const yaml_event_t *ev)
{
	return ev->start_mark.line + 1;
}

/* Next event; anchors and aliases are refused as errors of their own. */
static int next(struct reader *r, yaml_event_t *ev)
{
	if (r->fatal)
		return DRV_EDECODE;
	if (!yaml_parser_parse(&r->parser, ev)) {
		rerr(r, r->parser.problem_mark.line + 1, "YAML syntax error: %s",
		     r->parser.problem ? r->parser.problem : "unknown");
		r->fatal = true;
		return DRV_EDECODE;
	}
	if (ev->type == YAML_ALIAS_EVENT ||
	    (ev->type == YAML_SCALAR_EVENT && ev->data.scalar.anchor != NULL) ||
	    (ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.anchor != NULL) ||
	    (ev->type == YAML_MAPPING_START_EVENT && ev->data.mapping_start.anchor != NULL)) {
		rerr(r, ev_line(ev), "anchors and aliases are not allowed in a configuration");
		yaml_event_delete(ev);
		r->fatal = true;
		return DRV_EDECODE;
	}
	return DRV_OK;
}

/* Consume the rest of a node whose first event is ev (which is deleted). */
static int skip_node(struct reader *r, yaml_event_t *ev)
{
	int depth = ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT;

	yaml_event_delete(ev);
	while (depth > 0) {
		yaml_event_t e;
		if (next(r, &e) != DRV_OK)
			return DRV_EDECODE;
		if (e.type == YAML_MAPPING_START_EVENT || e.type == YAML_SEQUENCE_START_EVENT)
			depth++;
		else if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT)
			depth--;
		yaml_event_delete(&e);
	}
	return DRV_OK;
}

static const char *scalar(const yaml_event_t *ev)
{
	return (const char *)ev->data.scalar.value;
}

static bool is_null(const yaml_event_t *ev)
{
	const char *s = scalar(ev);

	return ev->data.scalar.plain_implicit &&
	       (s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0);
}

static bool scalar_ok(struct reader *r, const struct drv_cfg_opt *o, const yaml_event_t *ev)
{
	if (ev->data.scalar.length > DRV_CFG_SCALAR_MAX) {
		rerr(r, ev_line(ev), "%s: value longer than %d bytes", o->name, DRV_CFG_SCALAR_MAX);
		return false;
	}
	if (strlen(scalar(ev)) != ev->data.scalar.length) {
		rerr(r, ev_line(ev), "%s: value contains a NUL byte", o->name);
		return false;
	}
	return true;
}

/* A sequence of scalars (the SEQUENCE_START is already consumed). */
static int read_list(struct reader *r, const struct drv_cfg_opt *o)
{
	yaml_event_t ev;
	int rc = DRV_OK;

	for (;;) {
		if (next(r, &ev) != DRV_OK)
			return DRV_EDECODE;
		if (ev.type == YAML_SEQUENCE_END_EVENT)
			break;
		if (ev.type != YAML_SCALAR_EVENT) {
			rerr(r, ev_line(&ev), "%s: list entries must be scalars, not %s", o->name,
			     event_what(ev.type));
			if (skip_node(r, &ev) != DRV_OK)
				return DRV_EDECODE;
			continue;
		}
		if (scalar_ok(r, o, &ev) && list_add(r, o, ev_line(&ev), scalar(&ev)) == DRV_ENOMEM)
			rc = DRV_ENOMEM;
		yaml_event_delete(&ev);
	}
	yaml_event_delete(&ev);
	return rc;
}

/* A mapping of scalars (the MAPPING_START is already consumed). */
static int read_kv(struct reader *r, const struct drv_cfg_opt *o)
{
	struct drv_kvlist *l = field(r->out, o);
	yaml_event_t k, v;

	for (;;) {
		if (next(r, &k) != DRV_OK)
			return DRV_EDECODE;
		if (k.type == YAML_MAPPING_END_EVENT)
			break;
		if (next(r, &v) != DRV_OK) {
			yaml_event_delete(&k);
			return DRV_EDECODE;
		}
		if (k.type != YAML_SCALAR_EVENT || v.type != YAML_SCALAR_EVENT) {
			rerr(r, ev_line(&k), "%s: keys and values must be scalars", o->name);
		} else if (!scalar_ok(r, o, &k) || !scalar_ok(r, o, &v)) {
			/* reported */
		} else if (drv_kvlist_get(l, scalar(&k)) != NULL) {
			rerr(r, ev_line(&k), "%s: duplicate key '%s'", o->name, scalar(&k));
		} else if ((int64_t)l->n >= (o->max > 0 ? o->max : DRV_CFG_LIST_MAX)) {
			rerr(r, ev_line(&k), "%s: too many entries", o->name);
		} else if (drv_kvlist_add(l, scalar(&k), scalar(&v)) != DRV_OK) {
			yaml_event_delete(&k);
			yaml_event_delete(&v);
			return DRV_ENOMEM;
		}
		yaml_event_delete(&k);
		if (skip_node(r, &v) != DRV_OK)
			return DRV_EDECODE;
	}
	yaml_event_delete(&k);
	return DRV_OK;
}

static bool is_list(const struct drv_cfg_opt *o)
{
	return o->type == DRV_CFG_STRLIST || o->type == DRV_CFG_PATHLIST;
}

/* The value of option o, whose first event is ev (deleted here). */
static int read_value(struct reader *r, const struct drv_cfg_opt *o, yaml_event_t *ev)
{
	size_t line = ev_line(ev);
	int rc = DRV_OK;

	if (o->type == DRV_CFG_EXTERN)
		return skip_node(r, ev);
	if (ev->type == YAML_SCALAR_EVENT) {
		if (is_list(o) && is_null(ev))
			rc = DRV_OK;
		else if (!scalar_ok(r, o, ev))
			rc = DRV_EINVAL;
		else if (is_list(o))
			rc = list_add(r, o, line, scalar(ev));
		else if (o->type == DRV_CFG_KV)
			rerr(r, line, "%s: expected a mapping of keys to values", o->name);
		else
			rc = set_scalar(r, o, line, scalar(ev));
		yaml_event_delete(ev);
		return rc == DRV_ENOMEM ? rc : DRV_OK;
	}
	if (ev->type == YAML_SEQUENCE_START_EVENT && is_list(o)) {
		yaml_event_delete(ev);
		return read_list(r, o);
	}
	if (ev->type == YAML_MAPPING_START_EVENT && o->type == DRV_CFG_KV) {
		yaml_event_delete(ev);
		return read_kv(r, o);
	}
	rerr(r, line, "%s: expected %s, not %s", o->name,
	     is_list(o)              ? "a list"
	     : o->type == DRV_CFG_KV ? "a mapping"
	                             : "a scalar",
	     event_what(ev->type));
	return skip_node(r, ev);
}

static const struct drv_cfg_opt *find_opt(struct reader *r, const char *path, size_t *idx)
{
	for (size_t i = 0; i < r->n_opts; i++) {
		if (strcmp(r->opts[i].name, path) == 0) {
			*idx = i;
			return &r->opts[i];
		}
	}
	return NULL;
}

static bool is_section(struct reader *r, const char *path)
{
	size_t n = strlen(path);

	for (size_t i = 0; i < r->n_opts; i++) {
		if (strncmp(r->opts[i].name, path, n) == 0 && r->opts[i].name[n] == '.')
			return true;
	}
	return false;
}

static int read_mapping(struct reader *r, const char *prefix, int depth);

/* One "key: value" pair; key is the key's event (deleted here). */
static int read_pair(struct reader *r, const char *prefix, int depth, yaml_event_t *key)
{
	char path[PATH_KEY_MAX];
	const struct drv_cfg_opt *o;
	size_t line = ev_line(key), idx;
	yaml_event_t val;
	int n;

	n = snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", scalar(key));
	yaml_event_delete(key);
	if (next(r, &val) != DRV_OK)
		return DRV_EDECODE;
	if (n < 0 || (size_t)n >= sizeof(path)) {
		rerr(r, line, "option name too long");
		return skip_node(r, &val);
	}
	o = find_opt(r, path, &idx);
	if (o != NULL) {
		if (r->seen_line[idx] != 0) {
			rerr(r, line, "%s: set twice (first on line %zu)", path, r->seen_line[idx]);
			return skip_node(r, &val);
		}
		r->seen_line[idx] = line;
		return read_value(r, o, &val);
	}
	if (val.type == YAML_MAPPING_START_EVENT && is_section(r, path)) {
		if (depth >= DRV_CFG_DEPTH_MAX) {
			rerr(r, line, "%s: nested too deeply", path);
			return skip_node(r, &val);
		}
		yaml_event_delete(&val);
		return read_mapping(r, path, depth + 1);
	}
	rerr(r, line, "unknown option '%s'", path);
	return skip_node(r, &val);
}

/* Pairs until MAPPING_END (the MAPPING_START is already consumed). */
static int read_mapping(struct reader *r, const char *prefix, int depth)
{
	yaml_event_t key;
	int rc;

	for (;;) {
		if (next(r, &key) != DRV_OK)
			return DRV_EDECODE;
		if (key.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&key);
			return DRV_OK;
		}
		if (key.type != YAML_SCALAR_EVENT) {
			rerr(r, ev_line(&key), "keys must be plain names, not %s",
			     event_what(key.type));
			if (skip_node(r, &key) != DRV_OK)
				return DRV_EDECODE;
			yaml_event_t val;
			if (next(r, &val) != DRV_OK || skip_node(r, &val) != DRV_OK)
				return DRV_EDECODE;
			continue;
		}
		rc = read_pair(r, prefix, depth, &key);
		if (rc != DRV_OK)
			return rc;
	}
}

/* Expect an event of type t; anything else is an error. */
static int expect(struct reader *r, yaml_event_type_t t, const char *what)
{
	yaml_event_t ev;

	if (next(r, &ev) != DRV_OK)
		return DRV_EDECODE;
	if (ev.type != t) {
		rerr(r, ev_line(&ev), "%s", what);
		yaml_event_delete(&ev);
		return DRV_EDECODE;
	}
	yaml_event_delete(&ev);
	return DRV_OK;
}

static int read_document(struct reader *r)
{
	yaml_event_t ev;
	int rc;

	if (expect(r, YAML_STREAM_START_EVENT, "not a YAML stream") != DRV_OK)
		return DRV_EDECODE;
	if (next(r, &ev) != DRV_OK)
		return DRV_EDECODE;
	if (ev.type == YAML_STREAM_END_EVENT) { /* an empty file: all defaults */
		yaml_event_delete(&ev);
		return DRV_OK;
	}
	yaml_event_delete(&ev);
	if (next(r, &ev) != DRV_OK)
		return DRV_EDECODE;
	if (ev.type == YAML_SCALAR_EVENT && is_null(&ev)) {
		yaml_event_delete(&ev);
	} else if (ev.type == YAML_MAPPING_START_EVENT) {
		yaml_event_delete(&ev);
		rc = read_mapping(r, "", 0);
		if (rc != DRV_OK)
			return rc;
	} else {
		rerr(r, ev_line(&ev), "the configuration must be a mapping of options");
		yaml_event_delete(&ev);
		return DRV_EDECODE;
	}
	if (expect(r, YAML_DOCUMENT_END_EVENT, "trailing content after the configuration") !=
	            DRV_OK ||
	    expect(r, YAML_STREAM_END_EVENT, "only one YAML document is allowed") != DRV_OK)
		return DRV_EDECODE;
	return DRV_OK;
}

/* Defaults, required options, then validators. */
static int finish(struct reader *r)
{
	char why[200];

	for (size_t i = 0; i < r->n_opts; i++) {
		const struct drv_cfg_opt *o = &r->opts[i];
		if (r->seen_line[i] != 0)
			continue;
		if (o->def != NULL) {
			int rc = is_list(o) ? (o->def[0] ? list_add(r, o, 0, o->def) : DRV_OK)
			                    : set_scalar(r, o, 0, o->def);
			if (rc == DRV_ENOMEM)
				return rc;
		} else if (o->flags & DRV_CFG_REQUIRED) {
			rerr(r, 0, "missing required option '%s'", o->name);
		}
	}
	for (size_t i = 0; i < r->n_opts; i++) {
		const struct drv_cfg_opt *o = &r->opts[i];
		if (o->check == NULL)
			continue;
		/* a string whose value was refused (error already reported) is
		 * still NULL: there is nothing to validate */
		if ((o->type == DRV_CFG_STR || o->type == DRV_CFG_PATH) &&
		    *(char *const *)field(r->out, o) == NULL)
			continue;
		why[0] = '\0';
		if (o->check(field(r->out, o), why, sizeof(why)) != DRV_OK)
			rerr(r, r->seen_line[i], "%s: %s", o->name, why[0] ? why : "invalid value");
	}
	return DRV_OK;
}

static int load(struct reader *r, const char *buf, size_t len)
{
	int rc;

	if (len > DRV_CFG_FILE_MAX) {
		rerr(r, 0, "larger than %u bytes", DRV_CFG_FILE_MAX);
		return DRV_ETOOBIG;
	}
	r->seen_line = calloc(r->n_opts + 1, sizeof(*r->seen_line));
	if (r->seen_line == NULL)
		return DRV_ENOMEM;
	if (!yaml_parser_initialize(&r->parser)) {
		free(r->seen_line);
		return DRV_ENOMEM;
	}
	yaml_parser_set_input_string(&r->parser, (const unsigned char *)buf, len);
	rc = read_document(r);
	yaml_parser_delete(&r->parser);
	if (rc != DRV_ENOMEM)
		rc = finish(r);
	return rc;
}

int drv_cfg_load_buffer(const struct drv_cfg_opt *opts, size_t n_opts, const char *name,
                        const char *base_dir, const char *buf, size_t len, void *out,
                        struct drv_cfg_diag *diag)
{
	struct reader r = {.opts = opts,
	                   .n_opts = n_opts,
	                   .name = name,
	                   .base_dir = base_dir,
	                   .out = out,
	                   .diag = diag};
	int rc;

	memset(diag, 0, sizeof(*diag));
	rc = load(&r, buf, len);
	if (rc == DRV_OK && (diag->n > 0 || diag->dropped > 0))
		rc = DRV_EINVAL;
	if (rc != DRV_OK)
		drv_cfg_free(opts, n_opts, out);
	free(r.seen_line);
	return rc;
}

static bool holds_secret(const struct drv_cfg_opt *opts, size_t n_opts, const void *cfg)
{
	for (size_t i = 0; i < n_opts; i++) {
		const struct drv_cfg_opt *o = &opts[i];
		if ((o->flags & DRV_CFG_SECRET) &&
		    (o->type == DRV_CFG_STR || o->type == DRV_CFG_PATH) &&
		    *(char *const *)((const char *)cfg + o->offset) != NULL &&
		    (o->def == NULL ||
		     strcmp(*(char *const *)((const char *)cfg + o->offset), o->def) != 0))
			return true;
	}
	return false;
}

int drv_cfg_load_file(const struct drv_cfg_opt *opts, size_t n_opts, const char *path, void *out,
                      struct drv_cfg_diag *diag)
{
	char dir[PATH_MAX], *buf = NULL;
	size_t len;
	int rc;

	memset(diag, 0, sizeof(*diag));
	rc = drv_read_file(path, DRV_CFG_FILE_MAX, &buf, &len);
	if (rc != DRV_OK) {
		diag_add(diag, path, 0, "%s",
		         rc == DRV_ETOOBIG ? "file too large" : drv_strerror(rc));
		return rc;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	rc = drv_cfg_load_buffer(opts, n_opts, path, dirname(dir), buf, len, out, diag);
	free(buf);
	if (rc == DRV_OK && holds_secret(opts, n_opts, out) && drv_check_private(path) != DRV_OK) {
		diag_add(diag, path, 0,
		         "holds a secret but can be read by group or others (chmod 600)");
		drv_cfg_free(opts, n_opts, out);
		rc = DRV_EPERM;
	}
	return rc;
}

/* ---- writer ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap + (size_t)n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static void sb_quoted(struct sbuf *b, const char *s)
{
	sb_printf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			sb_printf(b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			sb_printf(b, "\\x%02x", c);
		else
			sb_printf(b, "%c", c);
	}
	sb_printf(b, "\"");
}

static void sb_duration(struct sbuf *b, int64_t ms)
{
	if (ms != 0 && ms % 3600000 == 0)
		sb_printf(b, "%" PRId64 "h", ms / 3600000);
	else if (ms != 0 && ms % 60000 == 0)
		sb_printf(b, "%" PRId64 "m", ms / 60000);
	else if (ms % 1000 == 0)
		sb_printf(b, "%" PRId64 "s", ms / 1000);
	else
		sb_printf(b, "%" PRId64 "ms", ms);
}

static void write_value(struct sbuf *b, const struct drv_cfg_opt *o, const void *f, int indent)
{
	switch (o->type) {
	case DRV_CFG_STR:
	case DRV_CFG_PATH:
		sb_printf(b, " ");
		sb_quoted(b, *(char *const *)f);
		break;
	case DRV_CFG_INT: sb_printf(b, " %" PRId64, *(const int64_t *)f); break;
	case DRV_CFG_BOOL: sb_printf(b, " %s", *(const bool *)f ? "true" : "false"); break;
	case DRV_CFG_DURATION:
		sb_printf(b, " ");
		sb_duration(b, *(const int64_t *)f);
		break;
	case DRV_CFG_STRLIST:
	case DRV_CFG_PATHLIST: {
		const struct drv_strlist *l = f;
		if (l->n == 0)
			sb_printf(b, " []");
		for (size_t i = 0; i < l->n; i++) {
			sb_printf(b, "\n%*s- ", indent + 2, "");
			sb_quoted(b, l->v[i]);
		}
		break;
	}
	case DRV_CFG_KV: {
		const struct drv_kvlist *l = f;
		if (l->n == 0)
			sb_printf(b, " {}");
		for (size_t i = 0; i < l->n; i++) {
			sb_printf(b, "\n%*s", indent + 2, "");
			sb_quoted(b, l->v[i].key);
			sb_printf(b, ": ");
			sb_quoted(b, l->v[i].value);
		}
		break;
	}
	case DRV_CFG_EXTERN: break;
	}
}

/* Open the sections of name that differ from the previous option's. */
static int open_sections(struct sbuf *b, const char *name, const char *prev)
{
	int depth = 0;
	const char *dot, *seg = name;

	while ((dot = strchr(seg, '.')) != NULL) {
		size_t upto = (size_t)(dot - name);
		bool same = prev != NULL && strncmp(prev, name, upto + 1) == 0;
		if (!same)
			sb_printf(b, "%*s%.*s:\n", depth * 2, "", (int)(dot - seg), seg);
		depth++;
		seg = dot + 1;
	}
	return depth;
}

int drv_cfg_format(const struct drv_cfg_opt *opts, size_t n_opts, const void *cfg,
                   const char *header, char **out)
{
	struct sbuf b = {0};
	const char *prev = NULL;

	if (header != NULL)
		sb_printf(&b, "%s", header);
	for (size_t i = 0; i < n_opts; i++) {
		const struct drv_cfg_opt *o = &opts[i];
		const void *f = (const char *)cfg + o->offset;
		int depth = open_sections(&b, o->name, prev);
		const char *leaf = strrchr(o->name, '.');

		leaf = leaf ? leaf + 1 : o->name;
		if (o->help != NULL)
			sb_printf(&b, "%*s# %s\n", depth * 2, "", o->help);
		if (o->type == DRV_CFG_EXTERN ||
		    ((o->type == DRV_CFG_STR || o->type == DRV_CFG_PATH) &&
		     *(char *const *)f == NULL)) {
			sb_printf(&b, "%*s# %s:\n", depth * 2, "", leaf);
		} else {
			sb_printf(&b, "%*s%s:", depth * 2, "", leaf);
			write_value(&b, o, f, depth * 2);
			sb_printf(&b, "\n");
		}
		prev = o->name;
	}
	if (b.oom || b.p == NULL) {
		free(b.p);
		return DRV_ENOMEM;
	}
	*out = b.p;
	return DRV_OK;
}
