/* step.c: step outcomes. */
#include "step.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

static void set(struct step_outcome *o, bool ok, const char *fmt, va_list ap)
{
	o->ok = ok;
	vsnprintf(o->message, sizeof(o->message), fmt, ap);
}

int step_fail(struct step_outcome *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set(o, false, fmt, ap);
	va_end(ap);
	return DRV_OK;
}

int step_ok(struct step_outcome *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set(o, true, fmt, ap);
	va_end(ap);
	return DRV_OK;
}

bool step_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 64 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	       n;
}
