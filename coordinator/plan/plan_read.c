/*
 * plan_read.c: typed readers for plan fields, and the error reporter.
 *
 * Each reader checks type, bounds and syntax of one field and reports what
 * is wrong with the field's path and source line, so that validation goes
 * on and every error of a plan is reported at once.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "plan_int.h"

/* The line of path, else of its nearest ancestor that has one. */
static int line_of(const struct drv_yj_lines *lines, const char *path)
{
	char buf[DRV_YJ_PATH_MAX];
	int line;

	snprintf(buf, sizeof(buf), "%s", path);
	for (;;) {
		char *dot, *br;

		line = drv_yj_line(lines, buf);
		if (line > 0 || buf[0] == '\0')
			return line;
		dot = strrchr(buf, '.');
		br = strrchr(buf, '[');
		if (dot == NULL && br == NULL)
			buf[0] = '\0';
		else
			*(dot > br ? dot : br) = '\0';
	}
}

static void pending_add(struct vctx *c, int line, const char *text)
{
	struct verr_line *v;

	if (c->n_pending >= DRV_PLAN_MAX_ERRORS + 1)
		return;
	v = realloc(c->pending, (c->n_pending + 1) * sizeof(*v));
	if (v == NULL) {
		c->oom = true;
		return;
	}
	c->pending = v;
	v[c->n_pending].line = line;
	v[c->n_pending].text = strdup(text);
	if (v[c->n_pending].text == NULL)
		c->oom = true;
	else
		c->n_pending++;
}

void plan_verr(struct vctx *c, const char *path, const char *fmt, ...)
{
	char msg[512], text[DRV_YJ_PATH_MAX + 1024];
	int line;
	va_list ap;

	c->nerr++;
	if (c->quiet)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	line = line_of(c->lines, path);
	if (line > 0)
		snprintf(text, sizeof(text), "%s:%d: %s%s%s", c->file, line, path,
		         path[0] ? ": " : "", msg);
	else
		snprintf(text, sizeof(text), "%s: %s%s%s", c->file, path, path[0] ? ": " : "", msg);
	pending_add(c, line, text);
}

void plan_verr_flush(struct vctx *c)
{
	/* Insertion sort: stable, and the list is short and nearly sorted. */
	for (size_t i = 1; i < c->n_pending; i++) {
		struct verr_line t = c->pending[i];
		size_t j = i;

		for (; j > 0 && c->pending[j - 1].line > t.line; j--)
			c->pending[j] = c->pending[j - 1];
		c->pending[j] = t;
	}
	for (size_t i = 0; i < c->n_pending; i++) {
		drv_plan_errors_add(c->errs, "%s", c->pending[i].text);
		free(c->pending[i].text);
	}
	free(c->pending);
	c->pending = NULL;
	c->n_pending = 0;
}

/* Paths are for messages: a truncated one is fine (checking the return
 * value also keeps gcc -O2's -Wformat-truncation quiet). */
void plan_pjoin(char *out, const char *path, const char *key)
{
	int n;

	if (path[0] == '\0')
		n = snprintf(out, DRV_YJ_PATH_MAX, "%s", key);
	else
		n = snprintf(out, DRV_YJ_PATH_MAX, "%s.%s", path, key);
	if (n < 0)
		out[0] = '\0';
}

void plan_pindex(char *out, const char *path, size_t i)
{
	if (snprintf(out, DRV_YJ_PATH_MAX, "%s[%zu]", path, i) < 0)
		out[0] = '\0';
}

static bool in_list(const char *s, const char *const *list)
{
	for (; *list != NULL; list++) {
		if (strcmp(s, *list) == 0)
			return true;
	}
	return false;
}

/* Levenshtein distance, capped: enough to suggest a fix for a typo. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[33], prev, tmp;

	if (la > 32 || lb > 32)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t best = prev + (a[i - 1] != b[j - 1]);

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

const char *plan_suggest(const char *key, const char *const *allowed)
{
	const char *best = NULL;
	size_t best_d = 3;

	for (; *allowed != NULL; allowed++) {
		size_t d = distance(key, *allowed);

		if (d < best_d) {
			best_d = d;
			best = *allowed;
		}
	}
	return best;
}

void plan_check_keys(struct vctx *c, const json_t *obj, const char *path,
                     const char *const *allowed)
{
	const char *key, *hint;
	json_t *v;
	char p[DRV_YJ_PATH_MAX];

	json_object_foreach((json_t *)obj, key, v)
	{
		if (in_list(key, allowed))
			continue;
		plan_pjoin(p, path, key);
		hint = plan_suggest(key, allowed);
		if (hint != NULL)
			plan_verr(c, p, "unknown field (did you mean %s?)", hint);
		else
			plan_verr(c, p, "unknown field");
	}
}

bool plan_want_object(struct vctx *c, const json_t *v, const char *path)
{
	if (json_is_object(v))
		return true;
	plan_verr(c, path, "must be a mapping");
	return false;
}

char *plan_strdup(struct vctx *c, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		c->oom = true;
	return d;
}

void plan_set_str(struct vctx *c, char **slot, const char *s)
{
	char *d = plan_strdup(c, s);

	if (d == NULL)
		return;
	free(*slot);
	*slot = d;
}

bool plan_valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DRV_PLAN_NAME_MAX || !isalnum((unsigned char)s[0]))
		return false;
	for (; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
			return false;
	}
	return true;
}

/* A scalar as text: strings as they are, numbers and booleans spelled out. */
static bool scalar_text(const json_t *v, char *buf, size_t cap, const char **out)
{
	if (json_is_string(v)) {
		*out = json_string_value(v);
		return true;
	}
	if (json_is_integer(v))
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, cap, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
	else
		return false;
	*out = buf;
	return true;
}

int plan_read_string(struct vctx *c, const json_t *obj, const char *path, const char *key,
                     char **out)
{
	json_t *v = json_object_get(obj, key);
	char p[DRV_YJ_PATH_MAX];
	char *s;

	if (v == NULL || json_is_null(v))
		return 0;
	plan_pjoin(p, path, key);
	if (!json_is_string(v)) {
		plan_verr(c, p,
		          json_is_number(v) ? "must be a string (quote it)" : "must be a string");
		return -1;
	}
	if (json_string_length(v) == 0) {
		plan_verr(c, p, "must not be empty");
		return -1;
	}
	s = plan_strdup(c, json_string_value(v));
	if (s == NULL)
		return -1;
	*out = s;
	return 1;
}

int plan_read_name(struct vctx *c, const json_t *obj, const char *path, const char *key, char **out)
{
	char p[DRV_YJ_PATH_MAX];
	char *s;
	int rc = plan_read_string(c, obj, path, key, &s);

	if (rc != 1)
		return rc;
	if (!plan_valid_name(s)) {
		plan_pjoin(p, path, key);
		plan_verr(c, p,
		          "\"%.80s\" is not a valid name (letters, digits, '.', '_', '-'; at most "
		          "%d)",
		          s, DRV_PLAN_NAME_MAX);
		free(s);
		return -1;
	}
	*out = s;
	return 1;
}

int plan_read_uint(struct vctx *c, const json_t *obj, const char *path, const char *key,
                   uint32_t min, uint32_t max, uint32_t *out)
{
	json_t *v = json_object_get(obj, key);
	char p[DRV_YJ_PATH_MAX];
	json_int_t n;

	if (v == NULL || json_is_null(v))
		return 0;
	plan_pjoin(p, path, key);
	if (!json_is_integer(v)) {
		plan_verr(c, p, "must be an integer");
		return -1;
	}
	n = json_integer_value(v);
	if (n < (json_int_t)min || n > (json_int_t)max) {
		plan_verr(c, p, "must be between %u and %u", min, max);
		return -1;
	}
	*out = (uint32_t)n;
	return 1;
}

int plan_read_number(struct vctx *c, const json_t *obj, const char *path, const char *key,
                     double *out)
{
	json_t *v = json_object_get(obj, key);
	char p[DRV_YJ_PATH_MAX];

	if (v == NULL || json_is_null(v))
		return 0;
	plan_pjoin(p, path, key);
	if (!json_is_number(v) || !isfinite(json_number_value(v))) {
		plan_verr(c, p, "must be a number");
		return -1;
	}
	*out = json_number_value(v);
	return 1;
}

int plan_read_duration(struct vctx *c, const json_t *obj, const char *path, const char *key,
                       int64_t *out)
{
	json_t *v = json_object_get(obj, key);
	char p[DRV_YJ_PATH_MAX];
	int64_t ms;

	if (v == NULL || json_is_null(v))
		return 0;
	plan_pjoin(p, path, key);
	if (json_is_number(v) && json_number_value(v) >= 0 &&
	    json_number_value(v) * 1000.0 <= (double)PLAN_DURATION_MAX_MS) {
		ms = (int64_t)(json_number_value(v) * 1000.0);
	} else if (!json_is_string(v) ||
	           drv_parse_duration_ms(json_string_value(v), &ms) != DRV_OK) {
		plan_verr(c, p, "must be a duration such as 500ms, 30s, 10m or 1h");
		return -1;
	}
	if (ms > PLAN_DURATION_MAX_MS) {
		plan_verr(c, p, "must be at most 168h");
		return -1;
	}
	*out = ms;
	return 1;
}

int plan_parse_percent(const char *s)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	v = strtol(s, &end, 10);
	if (strcmp(end, "%") != 0 || v < 0 || v > 100)
		return -1;
	return (int)v;
}

int plan_read_amount(struct vctx *c, const json_t *obj, const char *path, const char *key,
                     struct drv_plan_amount *out)
{
	json_t *v = json_object_get(obj, key);
	char p[DRV_YJ_PATH_MAX];
	int pct;

	if (v == NULL || json_is_null(v))
		return 0;
	plan_pjoin(p, path, key);
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= DRV_PLAN_MAX_HOSTS) {
		out->value = (uint32_t)json_integer_value(v);
		out->percent = false;
		return 1;
	}
	if (json_is_string(v) && (pct = plan_parse_percent(json_string_value(v))) >= 0) {
		out->value = (uint32_t)pct;
		out->percent = true;
		return 1;
	}
	plan_verr(c, p, "must be a host count (0..%d) or a percentage such as 25%%",
	          DRV_PLAN_MAX_HOSTS);
	return -1;
}

int plan_read_enum(struct vctx *c, const json_t *obj, const char *path, const char *key,
                   const char *const *names, int *out)
{
	json_t *v = json_object_get(obj, key);
	char p[DRV_YJ_PATH_MAX], list[256] = "";
	size_t n = 0;

	if (v == NULL || json_is_null(v))
		return 0;
	for (int i = 0; names[i] != NULL; i++) {
		if (json_is_string(v) && strcmp(json_string_value(v), names[i]) == 0) {
			*out = i;
			return 1;
		}
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", names[i]);
		if (n >= sizeof(list))
			n = sizeof(list) - 1;
	}
	plan_pjoin(p, path, key);
	plan_verr(c, p, "must be one of: %s", list);
	return -1;
}

/* One argv element: a non-empty string, or a number spelled out. */
static char *arg_dup(struct vctx *c, const json_t *v, const char *path)
{
	char buf[64];
	const char *s;

	if (!scalar_text(v, buf, sizeof(buf), &s) || json_is_boolean(v)) {
		plan_verr(c, path, "must be a string");
		return NULL;
	}
	return plan_strdup(c, s);
}

int plan_read_argv(struct vctx *c, const json_t *obj, const char *path, const char *key,
                   struct drv_plan_argv *out)
{
	json_t *v = json_object_get(obj, key), *item;
	struct drv_plan_argv a = {NULL, 0};
	char p[DRV_YJ_PATH_MAX], ip[DRV_YJ_PATH_MAX];
	size_t i, n;
	bool bad = false;

	if (v == NULL || json_is_null(v))
		return 0;
	plan_pjoin(p, path, key);
	if (json_is_string(v) && json_string_length(v) > 0) {
		n = 1; /* one word, no shell splitting */
	} else if (!json_is_array(v) || json_array_size(v) == 0 ||
	           json_array_size(v) > DRV_PLAN_MAX_ARGS) {
		plan_verr(c, p, "must be a list of 1 to %d strings (the command and its arguments)",
		          DRV_PLAN_MAX_ARGS);
		return -1;
	} else {
		n = json_array_size(v);
	}
	a.v = calloc(n + 1, sizeof(*a.v));
	if (a.v == NULL) {
		c->oom = true;
		return -1;
	}
	for (i = 0; i < n; i++) {
		item = json_is_array(v) ? json_array_get(v, i) : v;
		plan_pindex(ip, p, i);
		a.v[i] = arg_dup(c, item, json_is_array(v) ? ip : p);
		bad |= a.v[i] == NULL;
		a.n++;
	}
	if (!bad && a.v[0][0] == '\0') {
		plan_verr(c, p, "the command must not be empty");
		bad = true;
	}
	if (bad) {
		plan_argv_free(&a);
		return -1;
	}
	*out = a;
	return 1;
}

static bool valid_env_key(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_')
		return false;
	for (; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	}
	return true;
}

int plan_read_env(struct vctx *c, const json_t *obj, const char *path, const char *key,
                  struct drv_plan_kv **out, size_t *n_out)
{
	json_t *v = json_object_get(obj, key), *item;
	struct drv_plan_kv *kv;
	char p[DRV_YJ_PATH_MAX], ip[DRV_YJ_PATH_MAX], buf[64];
	const char *k, *s;
	size_t n = 0;
	bool bad = false;

	if (v == NULL || json_is_null(v))
		return 0;
	plan_pjoin(p, path, key);
	if (!json_is_object(v) || json_object_size(v) > DRV_PLAN_MAX_ENV) {
		plan_verr(c, p, "must be a mapping of at most %d NAME: value pairs",
		          DRV_PLAN_MAX_ENV);
		return -1;
	}
	kv = calloc(json_object_size(v) + 1, sizeof(*kv));
	if (kv == NULL) {
		c->oom = true;
		return -1;
	}
	json_object_foreach(v, k, item)
	{
		plan_pjoin(ip, p, k);
		if (!valid_env_key(k)) {
			plan_verr(c, ip, "not a valid variable name");
			bad = true;
		} else if (!scalar_text(item, buf, sizeof(buf), &s)) {
			plan_verr(c, ip, "must be a string");
			bad = true;
		} else {
			kv[n].key = plan_strdup(c, k);
			kv[n].value = plan_strdup(c, s);
			bad |= kv[n].key == NULL || kv[n].value == NULL;
			n++;
		}
	}
	if (bad) {
		plan_kv_free(kv, n);
		return -1;
	}
	*out = kv;
	*n_out = n;
	return 1;
}

static int read_labels(struct vctx *c, const json_t *sel, const char *path,
                       struct drv_plan_hosts *h)
{
	json_t *labels = json_object_get(sel, "labels");
	char p[DRV_YJ_PATH_MAX];
	const char *k;
	json_t *item;

	plan_check_keys(c, sel, path, (const char *const[]){"labels", NULL});
	plan_pjoin(p, path, "labels");
	if (!json_is_object(labels) || json_object_size(labels) == 0) {
		plan_verr(c, labels == NULL ? path : p,
		          "a host selector needs labels: {KEY: VALUE, ...}");
		return -1;
	}
	json_object_foreach(labels, k, item)
	{
		char ip[DRV_YJ_PATH_MAX];

		plan_pjoin(ip, p, k);
		if (!plan_valid_name(k) || !json_is_string(item) ||
		    !plan_valid_name(json_string_value(item))) {
			plan_verr(c, ip,
			          "labels are NAME: VALUE with names of letters, digits, "
			          "'.', '_', '-'");
			return -1;
		}
	}
	return plan_read_env(c, sel, path, "labels", &h->labels, &h->n_labels);
}

static int read_host_ids(struct vctx *c, const json_t *v, const char *p, struct drv_plan_hosts *h)
{
	char ip[DRV_YJ_PATH_MAX];
	size_t n = json_array_size(v);

	if (n == 0 || n > DRV_PLAN_MAX_HOSTS) {
		plan_verr(c, p, "must list 1 to %d agent ids", DRV_PLAN_MAX_HOSTS);
		return -1;
	}
	h->ids = calloc(n, sizeof(*h->ids));
	if (h->ids == NULL) {
		c->oom = true;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *item = json_array_get(v, i);

		plan_pindex(ip, p, i);
		if (!json_is_string(item) || !plan_valid_name(json_string_value(item))) {
			plan_verr(c, ip, "must be an agent id");
			return -1;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(h->ids[j], json_string_value(item)) == 0) {
				plan_verr(c, ip, "agent \"%s\" is listed twice", h->ids[j]);
				return -1;
			}
		}
		h->ids[h->n_ids] = plan_strdup(c, json_string_value(item));
		if (h->ids[h->n_ids] == NULL)
			return -1;
		h->n_ids++;
	}
	return 1;
}

int plan_read_hosts(struct vctx *c, const json_t *obj, const char *path, const char *key,
                    struct drv_plan_hosts *out)
{
	json_t *v = json_object_get(obj, key);
	struct drv_plan_hosts h = {0};
	char p[DRV_YJ_PATH_MAX];
	int rc;

	if (v == NULL || json_is_null(v))
		return 0;
	plan_pjoin(p, path, key);
	if (json_is_array(v)) {
		rc = read_host_ids(c, v, p, &h);
	} else if (json_is_object(v)) {
		rc = read_labels(c, v, p, &h);
	} else {
		plan_verr(c, p, "must be a list of agent ids or {labels: {KEY: VALUE}}");
		rc = -1;
	}
	if (rc != 1) {
		plan_hosts_free(&h);
		return -1;
	}
	*out = h;
	return 1;
}

static bool valid_file_path(const char *s)
{
	const char *comp = s;

	if (s[0] != '/' || strlen(s) > 1024)
		return false;
	while (comp != NULL) {
		comp++; /* past the slash */
		if (strncmp(comp, "..", 2) == 0 && (comp[2] == '/' || comp[2] == '\0'))
			return false;
		comp = strchr(comp, '/');
	}
	return true;
}

/* "0640" -> 0640; -1 if not an octal mode. */
static int parse_mode(const json_t *v)
{
	const char *s = json_string_value(v);
	char *end;
	long m;

	if (s == NULL || s[0] != '0')
		return -1;
	m = strtol(s, &end, 8);
	return *end != '\0' || m < 0 || m > 07777 ? -1 : (int)m;
}

/* One file: "content" or {content: "...", mode: "0640"}. */
static bool read_file(struct vctx *c, const json_t *item, const char *ip, struct drv_plan_file *f)
{
	const json_t *content = item, *mode;
	int m = 0640;

	if (json_is_object(item)) {
		plan_check_keys(c, item, ip, (const char *const[]){"content", "mode", NULL});
		content = json_object_get(item, "content");
		mode = json_object_get(item, "mode");
		if (mode != NULL && (m = parse_mode(mode)) < 0) {
			char mp[DRV_YJ_PATH_MAX];

			plan_pjoin(mp, ip, "mode");
			plan_verr(c, mp, "must be an octal string such as \"0640\"");
			return false;
		}
	}
	if (!json_is_string(content)) {
		plan_verr(c, ip, "must be the file's content as a string, or {content, mode}");
		return false;
	}
	f->content = plan_strdup(c, json_string_value(content));
	f->mode = (uint32_t)m;
	return f->content != NULL;
}

int plan_read_files(struct vctx *c, const json_t *obj, const char *path, const char *key,
                    struct drv_plan_file **out, size_t *n_out)
{
	json_t *v = json_object_get(obj, key), *item;
	struct drv_plan_file *files;
	char p[DRV_YJ_PATH_MAX], ip[DRV_YJ_PATH_MAX];
	const char *k;
	size_t n = 0;
	bool bad = false;

	if (v == NULL || json_is_null(v))
		return 0;
	plan_pjoin(p, path, key);
	if (!json_is_object(v) || json_object_size(v) > DRV_PLAN_MAX_FILES) {
		plan_verr(c, p, "must be a mapping of at most %d /absolute/path: content",
		          DRV_PLAN_MAX_FILES);
		return -1;
	}
	files = calloc(json_object_size(v) + 1, sizeof(*files));
	if (files == NULL) {
		c->oom = true;
		return -1;
	}
	json_object_foreach(v, k, item)
	{
		plan_pjoin(ip, p, k);
		if (!valid_file_path(k)) {
			plan_verr(c, ip, "must be an absolute path without '..'");
			bad = true;
			continue;
		}
		files[n].path = plan_strdup(c, k);
		bad |= files[n].path == NULL || !read_file(c, item, ip, &files[n]);
		n++;
	}
	if (bad) {
		for (size_t i = 0; i < n; i++) {
			free(files[i].path);
			free(files[i].content);
		}
		free(files);
		return -1;
	}
	*out = files;
	*n_out = n;
	return 1;
}
