/* ui_assets.c: lookup of the embedded dashboard files. */
#include "ui_assets.h"

#include <string.h>

const struct ui_asset *ui_assets_find(const char *path)
{
	if (strcmp(path, "/ui") == 0 || strcmp(path, "/ui/") == 0)
		path = "/ui/index.html";
	for (const struct ui_asset *a = ui_assets; a->path != NULL; a++) {
		if (strcmp(a->path, path) == 0)
			return a;
	}
	return NULL;
}
