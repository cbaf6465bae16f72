/* lazy_archive.c: libarchive, loaded on first use (lazylib.h). */
#include <archive.h>
#include <archive_entry.h>
#include <stddef.h>

#include "lazylib.h"

#define ARCHIVE_SONAME "libarchive.so.13"
static void *ARCHIVE_handle;

LAZYLIB_FN(ARCHIVE, struct archive *, archive_read_new, (void), (), NULL)
LAZYLIB_FN(ARCHIVE, int, archive_read_free, (struct archive * a), (a), ARCHIVE_FATAL)
LAZYLIB_FN(ARCHIVE, int, archive_read_support_filter_gzip, (struct archive * a), (a), ARCHIVE_FATAL)
LAZYLIB_FN(ARCHIVE, int, archive_read_support_filter_zstd, (struct archive * a), (a), ARCHIVE_FATAL)
LAZYLIB_FN(ARCHIVE, int, archive_read_support_format_tar, (struct archive * a), (a), ARCHIVE_FATAL)
LAZYLIB_FN(ARCHIVE, int, archive_read_open_fd, (struct archive * a, int fd, size_t block),
           (a, fd, block), ARCHIVE_FATAL)
LAZYLIB_FN(ARCHIVE, int, archive_read_open,
           (struct archive * a, void *data, archive_open_callback *o, archive_read_callback *r,
            archive_close_callback *c),
           (a, data, o, r, c), ARCHIVE_FATAL)
LAZYLIB_FN(ARCHIVE, int, archive_read_open_memory,
           (struct archive * a, const void *buf, size_t len), (a, buf, len), ARCHIVE_FATAL)
LAZYLIB_FN(ARCHIVE, int, archive_read_next_header, (struct archive * a, struct archive_entry **e),
           (a, e), ARCHIVE_FATAL)
LAZYLIB_FN(ARCHIVE, int, archive_read_data_block,
           (struct archive * a, const void **buf, size_t *len, la_int64_t *off), (a, buf, len, off),
           ARCHIVE_FATAL)
LAZYLIB_FN(ARCHIVE, const char *, archive_error_string, (struct archive * a), (a),
           "libarchive cannot be loaded")
LAZYLIB_FN(ARCHIVE, __LA_MODE_T, archive_entry_filetype, (struct archive_entry * e), (e), 0)
LAZYLIB_FN(ARCHIVE, __LA_MODE_T, archive_entry_perm, (struct archive_entry * e), (e), 0)
LAZYLIB_FN(ARCHIVE, la_int64_t, archive_entry_gid, (struct archive_entry * e), (e), 0)
LAZYLIB_FN(ARCHIVE, la_int64_t, archive_entry_uid, (struct archive_entry * e), (e), 0)
LAZYLIB_FN(ARCHIVE, la_int64_t, archive_entry_size, (struct archive_entry * e), (e), 0)
LAZYLIB_FN(ARCHIVE, time_t, archive_entry_mtime, (struct archive_entry * e), (e), 0)
LAZYLIB_FN(ARCHIVE, const char *, archive_entry_pathname, (struct archive_entry * e), (e), NULL)
LAZYLIB_FN(ARCHIVE, const char *, archive_entry_hardlink, (struct archive_entry * e), (e), NULL)
LAZYLIB_FN(ARCHIVE, const char *, archive_entry_symlink, (struct archive_entry * e), (e), NULL)
