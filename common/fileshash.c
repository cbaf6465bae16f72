/* fileshash.c: the digest of a release's files (see fileshash.h). */
#include "fileshash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct drv_file_ref *)a)->path,
	              ((const struct drv_file_ref *)b)->path);
}

int drv_files_hash(const struct drv_file_ref *files, size_t n, char out[DRV_DIGEST_STR])
{
	struct drv_file_ref *v;
	struct drv_sha256 *h = NULL;
	char len[32];
	int rc;

	out[0] = '\0';
	if (n == 0)
		return DRV_OK;
	v = malloc(n * sizeof(*v));
	if (v == NULL)
		return DRV_ENOMEM;
	memcpy(v, files, n * sizeof(*v));
	qsort(v, n, sizeof(*v), by_path);
	rc = drv_sha256_new_light(&h); /* plan files: small (sha256.h) */
	for (size_t i = 0; rc == DRV_OK && i < n; i++) {
		/* path NUL length NUL content: unambiguous; "-" for a missing file */
		if (v[i].content != NULL)
			snprintf(len, sizeof(len), "%zu", v[i].len);
		else
			snprintf(len, sizeof(len), "-");
		rc = drv_sha256_update(h, v[i].path, strlen(v[i].path) + 1);
		if (rc == DRV_OK)
			rc = drv_sha256_update(h, len, strlen(len) + 1);
		if (rc == DRV_OK && v[i].content != NULL && v[i].len > 0)
			rc = drv_sha256_update(h, v[i].content, v[i].len);
	}
	if (rc == DRV_OK)
		rc = drv_sha256_final(h, out);
	drv_sha256_free(h);
	free(v);
	return rc;
}
