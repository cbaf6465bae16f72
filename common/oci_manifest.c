/* oci_manifest.c: manifest and index parsing with jansson. */
#include "oci_manifest.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

struct perr {
	char *buf;
	size_t size;
};

__attribute__((format(printf, 2, 3))) static int bad(struct perr *e, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(e->buf, e->size, "manifest: ");

	va_start(ap, fmt);
	if (e->size > 0 && n >= 0 && (size_t)n < e->size)
		vsnprintf(e->buf + n, e->size - (size_t)n, fmt, ap);
	va_end(ap);
	return DRV_EDECODE;
}

static int copy_str(struct perr *e, json_t *obj, const char *key, const char *where, char *out,
                    size_t size, int required)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL) {
		if (required)
			return bad(e, "%s: '%s' is missing", where, key);
		out[0] = '\0';
		return DRV_OK;
	}
	if (!json_is_string(v))
		return bad(e, "%s: '%s' must be a string", where, key);
	if (json_string_length(v) >= size)
		return bad(e, "%s: '%s' is longer than %zu bytes", where, key, size - 1);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return DRV_OK;
}

static const char *const layer_types[][2] = {
        {"application/vnd.oci.image.layer.v1.tar", "plain"},
        {"application/vnd.oci.image.layer.v1.tar+gzip", "gzip"},
        {"application/vnd.oci.image.layer.v1.tar+zstd", "zstd"},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar", "plain"},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "gzip"},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", "zstd"},
        {"application/vnd.docker.image.rootfs.diff.tar", "plain"},
        {"application/vnd.docker.image.rootfs.diff.tar.gzip", "gzip"},
        {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "gzip"},
};

static int layer_compression(struct perr *e, struct drv_oci_desc *d, const char *where)
{
	for (size_t i = 0; i < sizeof(layer_types) / sizeof(layer_types[0]); i++) {
		if (strcmp(d->media_type, layer_types[i][0]) == 0) {
			d->compression = layer_types[i][1][0] == 'g'   ? DRV_OCI_GZIP
			                 : layer_types[i][1][0] == 'z' ? DRV_OCI_ZSTD
			                                               : DRV_OCI_PLAIN;
			return DRV_OK;
		}
	}
	return bad(e, "%s: unsupported layer media type '%s'", where, d->media_type);
}

static int parse_desc(struct perr *e, json_t *o, const char *where, struct drv_oci_desc *d)
{
	json_t *size = json_object_get(o, "size"), *plat;
	int rc;

	if (!json_is_object(o))
		return bad(e, "%s must be an object", where);
	rc = copy_str(e, o, "mediaType", where, d->media_type, sizeof(d->media_type), 0);
	if (rc == DRV_OK)
		rc = copy_str(e, o, "digest", where, d->digest, sizeof(d->digest), 1);
	if (rc != DRV_OK)
		return rc;
	if (strncmp(d->digest, "sha256:", 7) != 0)
		return bad(e, "%s: digest '%.80s' is not sha256 (only sha256 is supported)", where,
		           d->digest);
	if (!drv_digest_valid(d->digest))
		return bad(e, "%s: malformed digest '%.80s'", where, d->digest);
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return bad(e, "%s: 'size' must be a non-negative integer", where);
	d->size = json_integer_value(size);
	plat = json_object_get(o, "platform");
	if (plat != NULL) {
		if (!json_is_object(plat))
			return bad(e, "%s: 'platform' must be an object", where);
		rc = copy_str(e, plat, "os", where, d->os, sizeof(d->os), 0);
		if (rc == DRV_OK)
			rc = copy_str(e, plat, "architecture", where, d->arch, sizeof(d->arch), 0);
		if (rc == DRV_OK)
			rc = copy_str(e, plat, "variant", where, d->variant, sizeof(d->variant), 0);
	}
	return rc;
}

static int parse_entries(struct perr *e, json_t *arr, const char *name, struct drv_oci_manifest *m)
{
	char where[48];
	json_t *v;
	size_t i;
	int rc;

	if (!json_is_array(arr))
		return bad(e, "'%s' must be an array", name);
	if (json_array_size(arr) > DRV_OCI_MAX_ENTRIES)
		return bad(e, "'%s' has %zu entries, more than %d", name, json_array_size(arr),
		           DRV_OCI_MAX_ENTRIES);
	m->entries = calloc(json_array_size(arr) + 1, sizeof(*m->entries));
	if (m->entries == NULL)
		return DRV_ENOMEM;
	json_array_foreach(arr, i, v)
	{
		snprintf(where, sizeof(where), "%s[%zu]", name, i);
		rc = parse_desc(e, v, where, &m->entries[i]);
		if (rc == DRV_OK && m->kind == DRV_OCI_MANIFEST)
			rc = layer_compression(e, &m->entries[i], where);
		if (rc != DRV_OK)
			return rc;
		m->n_entries = i + 1;
	}
	return DRV_OK;
}

/* The kind from mediaType, else the Content-Type, else the shape. */
static int decide_kind(struct perr *e, json_t *root, const char *ctype, struct drv_oci_manifest *m)
{
	const char *mt = m->media_type[0] ? m->media_type : (ctype ? ctype : "");

	if (strncmp(mt, DRV_MT_OCI_MANIFEST, strlen(DRV_MT_OCI_MANIFEST)) == 0 ||
	    strncmp(mt, DRV_MT_DOCKER_MANIFEST, strlen(DRV_MT_DOCKER_MANIFEST)) == 0)
		m->kind = DRV_OCI_MANIFEST;
	else if (strncmp(mt, DRV_MT_OCI_INDEX, strlen(DRV_MT_OCI_INDEX)) == 0 ||
	         strncmp(mt, DRV_MT_DOCKER_LIST, strlen(DRV_MT_DOCKER_LIST)) == 0)
		m->kind = DRV_OCI_INDEX;
	else if (m->media_type[0] == '\0' && json_object_get(root, "manifests") != NULL)
		m->kind = DRV_OCI_INDEX;
	else if (m->media_type[0] == '\0' && json_object_get(root, "layers") != NULL)
		m->kind = DRV_OCI_MANIFEST;
	else
		return bad(e, "unsupported media type '%.100s'", mt);
	if (m->media_type[0] == '\0') {
		static const char *const known[] = {DRV_MT_OCI_MANIFEST, DRV_MT_OCI_INDEX,
		                                    DRV_MT_DOCKER_MANIFEST, DRV_MT_DOCKER_LIST};
		const char *name =
		        m->kind == DRV_OCI_INDEX ? DRV_MT_OCI_INDEX : DRV_MT_OCI_MANIFEST;
		for (size_t i = 0; ctype != NULL && i < 4; i++)
			if (strncmp(ctype, known[i], strlen(known[i])) == 0)
				name = known[i];
		snprintf(m->media_type, sizeof(m->media_type), "%s", name);
	}
	return DRV_OK;
}

static int parse_root(struct perr *e, json_t *root, const char *ctype, struct drv_oci_manifest *m)
{
	json_t *sv = json_object_get(root, "schemaVersion");
	int rc;

	if (!json_is_object(root))
		return bad(e, "the document is not a JSON object");
	if (!json_is_integer(sv))
		return bad(e, "'schemaVersion' is missing or not an integer");
	if (json_integer_value(sv) != 2)
		return bad(e,
		           "schemaVersion %lld is not supported (only 2; Docker schema 1 is"
		           " deprecated)",
		           (long long)json_integer_value(sv));
	rc = copy_str(e, root, "mediaType", "document", m->media_type, sizeof(m->media_type), 0);
	if (rc == DRV_OK)
		rc = decide_kind(e, root, ctype, m);
	if (rc != DRV_OK)
		return rc;
	if (m->kind == DRV_OCI_INDEX)
		return parse_entries(e, json_object_get(root, "manifests"), "manifests", m);
	rc = parse_desc(e, json_object_get(root, "config"), "config", &m->config);
	if (rc == DRV_OK)
		rc = parse_entries(e, json_object_get(root, "layers"), "layers", m);
	return rc;
}

int drv_oci_manifest_parse(const char *buf, size_t len, const char *content_type,
                           struct drv_oci_manifest *out, char *err, size_t err_size)
{
	struct perr e = {.buf = err, .size = err_size};
	struct drv_oci_manifest m = {0};
	json_error_t jerr;
	json_t *root;
	int rc;

	if (len > DRV_OCI_MANIFEST_MAX)
		return bad(&e, "%zu bytes, more than the %u byte limit", len, DRV_OCI_MANIFEST_MAX);
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return bad(&e, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
		           jerr.text);
	rc = parse_root(&e, root, content_type, &m);
	json_decref(root);
	if (rc != DRV_OK) {
		if (rc == DRV_ENOMEM)
			bad(&e, "out of memory");
		drv_oci_manifest_clear(&m);
		return rc;
	}
	*out = m;
	return DRV_OK;
}

void drv_oci_manifest_clear(struct drv_oci_manifest *m)
{
	if (m == NULL)
		return;
	free(m->entries);
	memset(m, 0, sizeof(*m));
}

int drv_oci_index_pick(const struct drv_oci_manifest *idx, const char *os, const char *arch,
                       const struct drv_oci_desc **out)
{
	if (idx->kind != DRV_OCI_INDEX)
		return DRV_EINVAL;
	for (size_t i = 0; i < idx->n_entries; i++) {
		const struct drv_oci_desc *d = &idx->entries[i];
		if (strcmp(d->os, os) == 0 && strcmp(d->arch, arch) == 0) {
			*out = d;
			return DRV_OK;
		}
	}
	return DRV_ENOENT;
}
