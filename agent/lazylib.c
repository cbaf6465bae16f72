/* lazylib.c: dlopen on first use (see lazylib.h). */
#include "lazylib.h"

#include <dlfcn.h>
#include <pthread.h>

#include "log.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

void *lazylib_sym(const char *soname, void **handle, const char *name)
{
	void *h, *f = NULL;

	pthread_mutex_lock(&mu);
	h = *handle;
	if (h == NULL) {
		h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
		if (h == NULL)
			drv_error("lazylib", "cannot load a library", "lib=%s error=\"%s\"", soname,
			          dlerror());
		*handle = h != NULL ? h : (void *)-1; /* tried: do not log it again */
	}
	if (h != NULL && h != (void *)-1)
		f = dlsym(h, name);
	pthread_mutex_unlock(&mu);
	if (h != NULL && h != (void *)-1 && f == NULL)
		drv_error("lazylib", "library lacks a function", "lib=%s function=%s", soname,
		          name);
	return f;
}
