/*
 * fileshash.h: one digest of a release's `files` (the plan's per-service
 * config files), computed the same way by the coordinator (from the plan)
 * and by the agent (from what is on disk now), so drift can tell a changed
 * config file.
 */
#ifndef DRV_FILESHASH_H
#define DRV_FILESHASH_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

struct drv_file_ref {
	const char *path;       /* as in the plan, absolute inside the release root */
	const uint8_t *content; /* NULL: the file is missing */
	size_t len;
};

/* "sha256:..." over the files in path order (the caller's order does not
 * matter); "" (out[0] = 0) for no files. */
int drv_files_hash(const struct drv_file_ref *files, size_t n, char out[DRV_DIGEST_STR]);

#endif
