/* cfg_section.c: named sections of a configuration file (cfg_section.h). */
#include "cfg_section.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void drv_cfg_rd_err(struct drv_cfg_rd *r, const char *path, const char *fmt, ...)
{
	char msg[160];
	va_list ap;
	int line = drv_yj_line(r->lines, path);

	r->errors++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->diag->n >= DRV_CFG_DIAG_MAX) {
		r->diag->dropped++;
		return;
	}
	if (line > 0)
		snprintf(r->diag->msg[r->diag->n++], DRV_CFG_DIAG_LEN, "%.80s:%d: %.60s: %s",
		         r->file, line, path, msg);
	else
		snprintf(r->diag->msg[r->diag->n++], DRV_CFG_DIAG_LEN, "%.80s: %.60s: %s", r->file,
		         path, msg);
}

bool drv_cfg_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DRV_CFG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

char *drv_cfg_resolve(const char *base_dir, const char *p)
{
	char *out;

	if (p[0] == '/' || base_dir == NULL)
		return strdup(p);
	if (asprintf(&out, "%s/%s", base_dir, p) < 0)
		return NULL;
	return out;
}

/* An entry of a section without read_one: name, mapping, fields. */
static int walk_entry(const struct drv_cfg_section *s, struct drv_cfg_rd *r, const char *name,
                      const json_t *v, void *elem)
{
	char path[DRV_YJ_PATH_MAX], fp[2 * DRV_YJ_PATH_MAX];
	const char *key;
	json_t *item;
	int rc;

	snprintf(path, sizeof(path), "%s.%s", s->key, name);
	if (!drv_cfg_name_ok(name)) {
		drv_cfg_rd_err(r, path, "%s's name is 1 to %d of A-Z a-z 0-9 . _ -", s->entry,
		               DRV_CFG_NAME_MAX);
		return DRV_OK;
	}
	if (!json_is_object(v)) {
		drv_cfg_rd_err(r, path, "must be a mapping: %s", s->fields);
		return DRV_OK;
	}
	if ((*(char **)((char *)elem + s->name_off) = strdup(name)) == NULL)
		return DRV_ENOMEM;
	if (s->begin != NULL)
		s->begin(elem);
	json_object_foreach((json_t *)v, key, item)
	{
		snprintf(fp, sizeof(fp), "%s.%s", path, key);
		rc = s->read_field(r, key, item, fp, elem);
		if (rc != DRV_OK)
			return rc;
	}
	if (s->end != NULL)
		s->end(r, path, v, elem);
	return DRV_OK;
}

int drv_cfg_section_read(const struct drv_cfg_section *s, struct drv_cfg_rd *r, const json_t *root,
                         void **v, size_t *n)
{
	const json_t *sec = json_object_get(root, s->key);
	const char *name;
	json_t *item;
	size_t got = 0;
	char *arr;
	int rc = DRV_OK;

	if (sec == NULL || json_is_null(sec))
		return DRV_OK;
	if (!json_is_object(sec) || json_object_size(sec) > s->max) {
		drv_cfg_rd_err(r, s->key, "must be a mapping of at most %zu names to %s", s->max,
		               s->what);
		return DRV_EINVAL;
	}
	arr = calloc(json_object_size(sec) + 1, s->size);
	if (arr == NULL)
		return DRV_ENOMEM;
	json_object_foreach((json_t *)sec, name, item)
	{
		void *elem = arr + got++ * s->size;

		rc = s->read_one != NULL ? s->read_one(r, name, item, elem)
		                         : walk_entry(s, r, name, item, elem);
		if (rc != DRV_OK)
			break;
	}
	if (rc == DRV_OK && r->errors > 0)
		rc = DRV_EINVAL;
	if (rc != DRV_OK) {
		for (size_t i = 0; i < got; i++)
			s->free_one(arr + i * s->size);
		free(arr);
		return rc;
	}
	*v = arr;
	*n = got;
	return DRV_OK;
}

int drv_cfg_section_parse(const struct drv_cfg_section *s, const char *buf, size_t len,
                          const char *file, const char *base_dir, struct drv_cfg_diag *diag,
                          void **v, size_t *n)
{
	struct drv_cfg_rd r = {.file = file, .base_dir = base_dir, .diag = diag};
	struct drv_yj_lines *lines = NULL;
	json_t *root = NULL;
	int rc = drv_cfg_tree_load(buf, len, file, &root, &lines, diag);

	if (rc != DRV_OK)
		return rc;
	r.lines = lines;
	rc = drv_cfg_section_read(s, &r, root, v, n);
	json_decref(root);
	drv_yj_lines_free(lines);
	return rc;
}

int drv_cfg_section_into(const struct drv_cfg_section *s, const json_t *root,
                         const struct drv_yj_lines *lines, const char *buf, size_t len,
                         const char *file, const char *base_dir, struct drv_cfg_diag *diag,
                         void *out)
{
	struct drv_cfg_rd r = {.lines = lines, .file = file, .base_dir = base_dir, .diag = diag};
	void *v = NULL;
	size_t n = 0;
	int rc = root != NULL ? drv_cfg_section_read(s, &r, root, &v, &n)
	                      : drv_cfg_section_parse(s, buf, len, file, base_dir, diag, &v, &n);

	if (rc == DRV_OK && v != NULL)
		s->keep(out, v, n);
	return rc;
}
