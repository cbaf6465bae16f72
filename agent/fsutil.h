/*
 * fsutil.h: file-system helpers for release directories: recursive removal
 * that never follows symlinks, and path resolution that stays beneath a
 * root directory (openat2 RESOLVE_BENEATH: a ".." or a symlink that would
 * leave the root fails with EXDEV instead of escaping).
 */
#ifndef DRV_AGENT_FSUTIL_H
#define DRV_AGENT_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Remove name (file, symlink or whole tree) in dirfd; missing is fine. */
int fs_remove_at(int dirfd, const char *name);
/* Remove a path (file or tree); missing is fine. */
int fs_remove_path(const char *path);

/* openat2(root, rel, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS).
 * Returns the fd, or -1 with errno (EXDEV: would leave the root). */
int fs_open_beneath(int root_fd, const char *rel, int flags, mode_t mode);

/* openat2(root, rel, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): as if
 * root were "/": ".." stops at root and absolute symlinks resolve inside it
 * (how a program in the image sees its own files). -1 with errno. */
int fs_open_in_root(int root_fd, const char *rel, int flags);

/* Open (O_PATH directory fd) the directory rel beneath root, creating
 * missing components with mode. -1 with errno on failure. "" is root. */
int fs_mkdirs_beneath(int root_fd, const char *rel, mode_t mode);

/* Bytes used by a tree (st_blocks), for logs and GC reports. */
unsigned long long fs_tree_size(const char *path);

#endif
