/*
 * atomicfile.h: whole-file writes that never leave a half-written file.
 *
 * The data goes to a temporary file in the same directory, is fsynced, then
 * renamed over the target, and the directory is fsynced. A reader sees the
 * old content or the new one, never a mix, even after a crash.
 */
#ifndef DRV_ATOMICFILE_H
#define DRV_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

int drv_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* As drv_write_atomic without the fsyncs: never a half-written file under
 * path, but after a crash the file may be empty or damaged. For content
 * that is checked whenever it is read (a content-addressed cache), where an
 * fsync costs milliseconds (several under I/O load) and buys nothing. */
int drv_write_replace(const char *path, const void *data, size_t len, mode_t mode);

/* Read a whole file of at most max bytes into a NUL-terminated buffer the
 * caller frees. DRV_ETOOBIG if larger, DRV_ENOENT if missing. */
int drv_read_file(const char *path, size_t max, char **out, size_t *out_len);

/* DRV_EPERM if the file can be read or written by group or others. */
int drv_check_private(const char *path);

/* mkdir -p with the given mode for the directories it creates. */
int drv_mkdirs(const char *path, mode_t mode);

#endif
