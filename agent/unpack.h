/*
 * unpack.h: applying image layers (tar, tar+gzip, tar+zstd) onto a root
 * directory with libarchive, the OCI way: entries in order, ".wh.NAME"
 * deletes NAME from the layers below, ".wh..wh..opq" empties a directory of
 * what the layers below put there.
 *
 * Safety: nothing is ever written outside the root. An entry with an
 * absolute path or a ".." component is refused, and so is one whose parent
 * path crosses a symlink that is absolute or leads out of the root (all
 * resolution goes through openat2 RESOLVE_BENEATH). A refused entry fails the
 * whole layer (DRV_EPERM) with a message naming the entry; the caller throws
 * the half-built root away. Symlinks themselves may point anywhere: they are
 * only dangerous when written through, which is what is checked. Device
 * nodes are skipped; ownership is kept when running as root.
 */
#ifndef DRV_AGENT_UNPACK_H
#define DRV_AGENT_UNPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sha256.h"

#define UNPACK_MAX_ENTRIES 1000000
#define UNPACK_PATH_MAX    4096

struct unpack_stats {
	uint64_t entries;
	uint64_t bytes;
	uint64_t whiteouts;
};

/* Apply the layer read from fd (from its current offset to its end) onto
 * the directory root_fd. With a digest (else NULL; got may be NULL), the
 * bytes are hashed in the same pass that unpacks them (each block as
 * libarchive reads it, then whatever follows the archive's end), never read
 * twice, and compared at the end: when they hash to something else,
 * DRV_EDECODE, got set to their digest (else got is ""), and root_fd is
 * emptied, whatever earlier layers had put there too (the release being
 * built must be thrown away). Hashing uses libcrypto (sha256.h). */
int unpack_layer_fd(int layer_fd, int root_fd, const char *digest, char got[DRV_DIGEST_STR],
                    struct unpack_stats *stats, char *err, size_t err_size);
/* The same from memory (fuzzing, tests). */
int unpack_layer_mem(const void *buf, size_t len, int root_fd, struct unpack_stats *stats,
                     char *err, size_t err_size);

/* Write one file (the instruction's `files`) at path inside root_fd,
 * creating parent directories (0755); same refusal rules as layer entries. */
int unpack_write_file(int root_fd, const char *path, const void *data, size_t len, mode_t mode,
                      char *err, size_t err_size);

/*
 * Remove the setuid and setgid bits of every regular file under root_fd (not
 * following symlinks). *list (malloc'd, the caller frees; NULL when none)
 * gets one "MODE PATH\n" line per file changed, with its mode before, for
 * unpack_apply_setid; *count the number of files.
 */
int unpack_strip_setid(int root_fd, char **list, size_t *len, size_t *count);
/* Put the listed bits back (keep) or take them off again (!keep). Paths
 * resolve beneath root_fd and must still be regular files. */
int unpack_apply_setid(int root_fd, const char *list, size_t len, bool keep);

/*
 * Pure: turn an entry name into a clean relative path: strips "./" and
 * trailing '/', folds "a//b". DRV_EPERM for an absolute path or a ".."
 * component, DRV_EINVAL for an empty name or one over UNPACK_PATH_MAX.
 * "" (the root itself) is DRV_OK with out = "".
 */
int unpack_clean_path(const char *in, char *out, size_t size);

/* Pure: classify a clean path's last component. Returns 0 for a normal
 * entry, 1 for ".wh.NAME" (target = the path without the prefix), 2 for
 * the opaque marker ".wh..wh..opq" (target = its directory). */
int unpack_whiteout(const char *clean, char *target, size_t size);

#endif
