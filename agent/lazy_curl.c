/* lazy_curl.c: libcurl, loaded on first use (lazylib.h). */
#define CURL_DISABLE_TYPECHECK /* curl.h makes setopt/getinfo macros otherwise */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdlib.h>

#include "lazylib.h"

#define CURL_SONAME "libcurl.so.4"
static void *CURL_handle;

LAZYLIB_FN(CURL, CURLcode, curl_global_init, (long flags), (flags), CURLE_FAILED_INIT)
LAZYLIB_FN(CURL, CURL *, curl_easy_init, (void), (), NULL)
LAZYLIB_FN(CURL, CURLcode, curl_easy_perform, (CURL * h), (h), CURLE_FAILED_INIT)
LAZYLIB_FN(CURL, char *, curl_easy_escape, (CURL * h, const char *s, int len), (h, s, len), NULL)
LAZYLIB_FN(CURL, char *, curl_escape, (const char *s, int len), (s, len), NULL)
LAZYLIB_FN(CURL, struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s),
           (l, s), NULL)
LAZYLIB_FN(CURL, CURLM *, curl_multi_init, (void), (), NULL)
LAZYLIB_FN(CURL, CURLMcode, curl_multi_add_handle, (CURLM * m, CURL *h), (m, h),
           CURLM_INTERNAL_ERROR)
LAZYLIB_FN(CURL, CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL *h), (m, h),
           CURLM_INTERNAL_ERROR)
LAZYLIB_FN(CURL, CURLMcode, curl_multi_perform, (CURLM * m, int *running), (m, running),
           CURLM_INTERNAL_ERROR)
LAZYLIB_FN(CURL, CURLMcode, curl_multi_poll,
           (CURLM * m, struct curl_waitfd *fds, unsigned n, int ms, int *numfds),
           (m, fds, n, ms, numfds), CURLM_INTERNAL_ERROR)
LAZYLIB_FN(CURL, CURLMsg *, curl_multi_info_read, (CURLM * m, int *left), (m, left), NULL)
LAZYLIB_FN(CURL, CURLMcode, curl_multi_cleanup, (CURLM * m), (m), CURLM_INTERNAL_ERROR)

LAZYLIB_VOID(CURL, curl_easy_cleanup, (CURL * h), (h))
LAZYLIB_VOID(CURL, curl_easy_reset, (CURL * h), (h))
LAZYLIB_VOID(CURL, curl_free, (void *p), (p))
LAZYLIB_VOID(CURL, curl_slist_free_all, (struct curl_slist * l), (l))

const char *curl_easy_strerror(CURLcode cc)
{
	__typeof__(curl_easy_strerror) *f = (__typeof__(curl_easy_strerror) *)lazylib_sym(
	        CURL_SONAME, &CURL_handle, "curl_easy_strerror");

	return f != NULL ? f(cc) : "libcurl cannot be loaded";
}

/* The option's number says the type of its argument (CURLOPTTYPE_*): a
 * long, a curl_off_t, or a pointer (object or function; one representation
 * on every ABI drover builds for). */
CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	__typeof__(curl_easy_setopt) *f = (__typeof__(curl_easy_setopt) *)lazylib_sym(
	        CURL_SONAME, &CURL_handle, "curl_easy_setopt");
	CURLcode rc;
	va_list ap;

	if (f == NULL)
		return CURLE_FAILED_INIT;
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT) {
		rc = f(h, opt, va_arg(ap, long));
	} else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB) {
		rc = f(h, opt, va_arg(ap, curl_off_t));
	} else {
		rc = f(h, opt, va_arg(ap, void *));
	}
	va_end(ap);
	return rc;
}

/* Every CURLINFO takes one pointer. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	__typeof__(curl_easy_getinfo) *f = (__typeof__(curl_easy_getinfo) *)lazylib_sym(
	        CURL_SONAME, &CURL_handle, "curl_easy_getinfo");
	CURLcode rc;
	va_list ap;

	if (f == NULL)
		return CURLE_FAILED_INIT;
	va_start(ap, info);
	rc = f(h, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}
