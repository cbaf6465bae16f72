/* textcut.c: texts cut at word boundaries (see textcut.h). */
#include "textcut.h"

#include <string.h>

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

char *drv_text_cut(char *out, size_t cap, const char *in, size_t max)
{
	size_t n, keep, el = strlen(DRV_TEXT_ELLIPSIS);

	if (cap == 0)
		return out;
	if (in == NULL)
		in = "";
	if (max >= cap)
		max = cap - 1;
	n = strlen(in);
	if (n <= max) {
		memcpy(out, in, n + 1);
		return out;
	}
	if (max <= el) {
		memcpy(out, in, max);
		out[max] = '\0';
		return out;
	}
	/* The last space at or before max - el: what comes before is whole. */
	keep = max - el;
	while (keep > 0 && !is_space(in[keep]))
		keep--;
	if (keep == 0)
		keep = max - el; /* one long word: cut inside it */
	while (keep > 0 && (is_space(in[keep - 1]) || in[keep - 1] == '(' || in[keep - 1] == '['))
		keep--;
	memcpy(out, in, keep);
	memcpy(out + keep, DRV_TEXT_ELLIPSIS, el + 1);
	return out;
}
