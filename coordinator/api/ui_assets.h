/*
 * ui_assets.h: the web dashboard's static files, compiled into droverd
 * (generated at build time from coordinator/ui/ by ui/embed.cmake).
 */
#ifndef DRV_UI_ASSETS_H
#define DRV_UI_ASSETS_H

#include <stddef.h>

/* every embedded file is UTF-8 text */
#define UI_CHARSET "; charset=utf-8"

struct ui_asset {
	const char *path; /* "/ui/app.js" */
	const char *mime;
	const unsigned char *data;
	size_t len;
};

/* Terminated by an entry whose path is NULL. */
extern const struct ui_asset ui_assets[];

/* The asset for a request path; "/ui" and "/ui/" map to index.html. NULL if none. */
const struct ui_asset *ui_assets_find(const char *path);

#endif
