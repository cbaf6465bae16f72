/*
 * cfg_section.h: the named sections of a configuration file that an
 * options table (config.h) cannot describe, such as droverd's `balancers`
 * and `prometheus`: a mapping of names to items, read from the file's tree
 * (drv_cfg_tree_load) with the line of every node for the messages.
 */
#ifndef DRV_CFG_SECTION_H
#define DRV_CFG_SECTION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "yamljson.h"

#define DRV_CFG_NAME_MAX 63

/* One reading of one section. */
struct drv_cfg_rd {
	const struct drv_yj_lines *lines;
	const char *file, *base_dir; /* base_dir: relative paths resolve against it */
	struct drv_cfg_diag *diag;
	int errors; /* reported so far */
};

/* "file:line: path: message" (line when known) into diag; counts an error. */
__attribute__((format(printf, 3, 4))) void drv_cfg_rd_err(struct drv_cfg_rd *r, const char *path,
                                                          const char *fmt, ...);
/* 1 to DRV_CFG_NAME_MAX of A-Z a-z 0-9 . _ - */
bool drv_cfg_name_ok(const char *s);
/* p against base_dir (an absolute p as it is): malloc'd, NULL when out of memory. */
char *drv_cfg_resolve(const char *base_dir, const char *p);

struct drv_cfg_section {
	const char *key;  /* "balancers" */
	const char *what; /* what the names map to, for the message */
	size_t max;       /* entries at most */
	size_t size;      /* bytes of one element */
	/* Fill elem (zeroed) from item v; errors go to r. DRV_OK unless out of
	 * memory. NULL: every entry is a mapping of fields, read by the walk
	 * below (name checked, then begin, read_field for each field, end). */
	int (*read_one)(struct drv_cfg_rd *r, const char *name, const json_t *v, void *elem);
	void (*free_one)(void *elem);
	/* The walk: what an entry is ("a balancer": "a balancer's name is 1 to
	 * 63 of ...") and its fields ("kind, socket or argv, timeout": an entry
	 * that is no mapping "must be a mapping: ..."). */
	const char *entry, *fields;
	/* Where the walk keeps a copy of the entry's name: the offset of a
	 * char * in elem. */
	size_t name_off;
	/* Before the fields of a well-named mapping (optional): defaults. */
	void (*begin)(void *elem);
	/* One field, at path ("balancers.lb.kind"): errors go to r. DRV_OK
	 * unless out of memory. */
	int (*read_field)(struct drv_cfg_rd *r, const char *key, const json_t *v, const char *path,
	                  void *elem);
	/* After the fields (optional): checks across them, at the entry's path. */
	void (*end)(struct drv_cfg_rd *r, const char *path, const json_t *v, void *elem);
	/* Where drv_cfg_section_into puts what was read: out->v, out->n. */
	void (*keep)(void *out, void *v, size_t n);
};

/*
 * Read section s of root into a new array (*v, *n; free each element with
 * free_one, then the array). Absent or null: DRV_OK and nothing written.
 * DRV_EINVAL when anything was reported (nothing kept), DRV_ENOMEM.
 */
int drv_cfg_section_read(const struct drv_cfg_section *s, struct drv_cfg_rd *r, const json_t *root,
                         void **v, size_t *n);
/* The same from a whole file's text (drv_cfg_tree_load, then read). */
int drv_cfg_section_parse(const struct drv_cfg_section *s, const char *buf, size_t len,
                          const char *file, const char *base_dir, struct drv_cfg_diag *diag,
                          void **v, size_t *n);

/*
 * Read section s of root (lines for the messages) into out with s->keep
 * (nothing when the section is absent): drv_cfg_section_read's codes. With
 * root NULL, from the file's text buf (drv_cfg_section_parse).
 */
int drv_cfg_section_into(const struct drv_cfg_section *s, const json_t *root,
                         const struct drv_yj_lines *lines, const char *buf, size_t len,
                         const char *file, const char *base_dir, struct drv_cfg_diag *diag,
                         void *out);

#endif
