/*
 * textcut.h: cut a text for a reason or a message without breaking a
 * word or a URL: at the last space that fits, with "..." appended.
 */
#ifndef DRV_TEXTCUT_H
#define DRV_TEXTCUT_H

#include <stddef.h>

#define DRV_TEXT_ELLIPSIS "..."

/*
 * Copy in into out (cap bytes, NUL included), at most max bytes of text
 * (max < cap; max = cap - 1 when larger). A text that fits is copied as it
 * is; a longer one is cut after its last whole word that leaves room for
 * the ellipsis, trailing spaces and an opening bracket dropped. Only a text
 * without a space in reach is cut inside its first word. Returns out.
 */
char *drv_text_cut(char *out, size_t cap, const char *in, size_t max);

#endif
