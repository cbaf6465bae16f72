/*
 * yamljson.h: YAML (or JSON) to a jansson tree, with the source line of
 * every node.
 *
 * Plans and configs are written in YAML and handled as JSON. The loader
 * follows the YAML 1.2 core schema for plain scalars (null, true/false,
 * integers, floats; "yes", "on" and friends stay strings), refuses what a
 * hostile file could abuse (aliases, several documents, duplicate keys,
 * non-scalar keys, unknown tags, NUL bytes, too deep or too many nodes) and
 * caps the input size. JSON is loaded by the same YAML parser, so JSON
 * input gets line numbers too; a JSON text that libyaml refuses is retried
 * with jansson (without line numbers).
 *
 * Every node's line is kept in a side table keyed by its path: "" is the
 * root, "tiers[0].services[1].image" a nested node (object members by
 * name after a dot, array items by index in brackets). A member's line is
 * the line of its key.
 */
#ifndef DRV_YAMLJSON_H
#define DRV_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

#define DRV_YJ_MAX_DEPTH 64
#define DRV_YJ_MAX_NODES 500000
#define DRV_YJ_PATH_MAX  512

/* Path -> line table. Owned by the caller of drv_yj_load_*; free with
 * drv_yj_lines_free (accepts NULL). */
struct drv_yj_lines;

struct drv_yj_error {
	int line; /* 1-based; 0 when unknown */
	char msg[256];
};

/*
 * Load one YAML or JSON document of at most max bytes. On success *out_root
 * is a new reference the caller decrefs and *out_lines (if out_lines is not
 * NULL) a table the caller frees. On failure nothing is written to the
 * out-parameters and err (if not NULL) says what and where: DRV_ETOOBIG,
 * DRV_EDECODE (syntax or refused construct), DRV_ENOMEM.
 */
int drv_yj_load_buffer(const char *buf, size_t len, size_t max, json_t **out_root,
                       struct drv_yj_lines **out_lines, struct drv_yj_error *err);
/* The same for a file; DRV_ENOENT / DRV_EIO when it cannot be read. */
int drv_yj_load_file(const char *path, size_t max, json_t **out_root,
                     struct drv_yj_lines **out_lines, struct drv_yj_error *err);

/* Line of the node at path (see above), 0 when unknown or lines is NULL. */
int drv_yj_line(const struct drv_yj_lines *lines, const char *path);
/* Number of entries (for tests). */
size_t drv_yj_count(const struct drv_yj_lines *lines);
void drv_yj_lines_free(struct drv_yj_lines *lines);

#endif
