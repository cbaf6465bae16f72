/*
 * config.h: YAML configuration files read through an options table.
 *
 * Each daemon describes its options once, in a const table of struct
 * drv_cfg_opt (name, type, where the value goes in the caller's struct,
 * default, bounds, validator, help). This module reads a file or a buffer
 * against such a table, fills the struct, applies defaults, checks bounds and
 * required options, and reports every error it finds (not only the first) as
 * "file:line: message". It also writes a struct back out as YAML with the
 * help text as comments (used by `init`).
 *
 * Names are dotted paths: the option "tls.cert" is written
 *
 *     tls:
 *       cert: /etc/drover/tls.crt
 *
 * Anchors and aliases are refused (no alias bombs); the file is capped at
 * DRV_CFG_FILE_MAX bytes, every scalar at DRV_CFG_SCALAR_MAX, every list at
 * DRV_CFG_LIST_MAX entries.
 *
 * Ownership: strings and lists written into the caller's struct are malloc'd
 * and owned by the struct; release them with drv_cfg_free().
 */
#ifndef DRV_CONFIG_H
#define DRV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "yamljson.h"

#define DRV_CFG_FILE_MAX   (256u << 10)
#define DRV_CFG_SCALAR_MAX 4096
#define DRV_CFG_LIST_MAX   256
#define DRV_CFG_DEPTH_MAX  8
#define DRV_CFG_DIAG_MAX   32
#define DRV_CFG_DIAG_LEN   320

enum drv_cfg_type {
	DRV_CFG_STR,      /* char * */
	DRV_CFG_PATH,     /* char *; relative paths resolve against the file's directory */
	DRV_CFG_INT,      /* int64_t, within [min, max] */
	DRV_CFG_BOOL,     /* bool: true/false/yes/no/on/off */
	DRV_CFG_DURATION, /* int64_t milliseconds ("250ms", "2s", "10m"), within [min, max] */
	DRV_CFG_STRLIST,  /* struct drv_strlist: a sequence of scalars (or one scalar) */
	DRV_CFG_PATHLIST, /* struct drv_strlist of paths, resolved like DRV_CFG_PATH */
	DRV_CFG_KV,       /* struct drv_kvlist: a mapping of scalars */
	DRV_CFG_EXTERN,   /* a section read by the caller (any node; skipped here) */
};

struct drv_strlist {
	size_t n;
	char **v;
};

struct drv_kv {
	char *key;
	char *value;
};

struct drv_kvlist {
	size_t n;
	struct drv_kv *v;
};

#define DRV_CFG_REQUIRED 0x1u /* an error if absent and there is no default */
#define DRV_CFG_SECRET   0x2u /* the file holding it must not be readable by others */

/* A validator: return DRV_OK, or an error code and a reason in why. */
typedef int (*drv_cfg_check_fn)(const void *value, char *why, size_t why_len);

struct drv_cfg_opt {
	const char *name; /* dotted path */
	enum drv_cfg_type type;
	size_t offset;          /* offsetof(struct ..., field) */
	const char *def;        /* default in YAML scalar syntax; NULL: none */
	int64_t min, max;       /* INT and DURATION bounds; STR max length; lists max count */
	unsigned flags;         /* DRV_CFG_REQUIRED, DRV_CFG_SECRET */
	drv_cfg_check_fn check; /* optional, run on the final value */
	const char *help;       /* one line, written as a comment by drv_cfg_format */
};

/* Every error found, each "file:line: message" (line 0: no line). */
struct drv_cfg_diag {
	size_t n;
	size_t dropped; /* errors beyond DRV_CFG_DIAG_MAX */
	char msg[DRV_CFG_DIAG_MAX][DRV_CFG_DIAG_LEN];
};

/*
 * Read path against opts into out (which must be zeroed or hold only what a
 * previous drv_cfg_free left). On failure out is freed again and diag says
 * why. DRV_EPERM if a DRV_CFG_SECRET option is set in a file that group or
 * others can read.
 */
int drv_cfg_load_file(const struct drv_cfg_opt *opts, size_t n_opts, const char *path, void *out,
                      struct drv_cfg_diag *diag);
/* The same for a buffer; name is used in messages and base_dir resolves
 * relative paths (NULL: the current directory). */
int drv_cfg_load_buffer(const struct drv_cfg_opt *opts, size_t n_opts, const char *name,
                        const char *base_dir, const char *buf, size_t len, void *out,
                        struct drv_cfg_diag *diag);
void drv_cfg_free(const struct drv_cfg_opt *opts, size_t n_opts, void *cfg);

/* Print every diag line to stderr. */
void drv_cfg_diag_print(const struct drv_cfg_diag *diag);
/* Append "path: message" to diag (counted in dropped when it is full). */
__attribute__((format(printf, 3, 4))) void drv_cfg_diag_add(struct drv_cfg_diag *diag,
                                                            const char *path, const char *fmt, ...);

/* Rules between options, run on a loaded struct: problems go to diag. */
typedef void (*drv_cfg_cross_fn)(const char *path, const void *cfg, struct drv_cfg_diag *diag);
/* Zero out, drv_cfg_load_file, then cross (may be NULL): DRV_EINVAL (out
 * freed again) when it found anything. What both daemons' loaders do. */
int drv_cfg_load_checked(const struct drv_cfg_opt *opts, size_t n_opts, const char *path, void *out,
                         size_t out_size, struct drv_cfg_diag *diag, drv_cfg_cross_fn cross);

/* A config file's YAML as a jansson tree with the line of every node, for
 * the sections an options table cannot describe (droverd's balancers and
 * Prometheus servers). A syntax error goes to diag as "file:line: message"
 * (DRV_EINVAL). On success the caller frees *root and *lines. */
int drv_cfg_tree_load(const char *buf, size_t len, const char *file, json_t **root,
                      struct drv_yj_lines **lines, struct drv_cfg_diag *diag);

/* Validators both daemons' tables use. */
int drv_cfg_check_log_level(const void *v, char *why, size_t why_len); /* debug|info|warn|error */
/* A link URL: tcp:// (tests) or tls+tcp://. */
bool drv_cfg_link_url_ok(const char *url);

/* Write cfg as YAML (help as comments); *out is malloc'd, the caller frees it. */
int drv_cfg_format(const struct drv_cfg_opt *opts, size_t n_opts, const void *cfg,
                   const char *header, char **out);

/* List helpers, for code that fills a struct without a file (init). */
int drv_strlist_add(struct drv_strlist *l, const char *s);
void drv_strlist_free(struct drv_strlist *l);
int drv_kvlist_add(struct drv_kvlist *l, const char *key, const char *value);
void drv_kvlist_free(struct drv_kvlist *l);
/* NULL if absent. */
const char *drv_kvlist_get(const struct drv_kvlist *l, const char *key);

#endif
