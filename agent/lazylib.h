/*
 * lazylib.h: libraries the resident agent loads only when it uses them.
 *
 * libcurl (registry pulls, the container driver's API calls), libarchive
 * (layer unpacking) and libsystemd (the systemd driver's sd-bus) with their
 * dependencies (GnuTLS, Kerberos, LDAP, libxml2, ICU, libstdc++, libgcrypt
 * ...) were most of the agent's resident memory, though the long-running
 * agent rarely needs them: pulls run in the fetch helper, layers are
 * unpacked by the unpack helper (both exec'd per use, unpack_helper.h), and
 * HTTP health checks speak HTTP themselves. libcrypto (SHA-256 of blobs
 * and layers, sha256.h) is the same: linked, it cost 1.4 MiB at idle, and
 * its first digest 2 MiB more. So drover-agent is linked against none of
 * them (-Wl,--as-needed with lazy_curl.c, lazy_archive.c, lazy_systemd.c
 * and lazy_crypto.c in the executable): their functions are defined there
 * as stubs that dlopen the real library on first use and call through. The
 * helpers load them; the agent itself only when a service of the container
 * or systemd driver runs (ctest agent_lazy_libs checks the dependencies).
 *
 * If the library cannot be loaded, a stub fails the way the library's own
 * function fails (NULL, an error code) and the load failure is logged once.
 */
#ifndef DRV_AGENT_LAZYLIB_H
#define DRV_AGENT_LAZYLIB_H

/* The symbol name from the library soname (dlopen'd once, RTLD_LOCAL);
 * NULL if it cannot be loaded. Thread-safe. */
void *lazylib_sym(const char *soname, void **handle, const char *name);

/* One stub: a function of the library with its own prototype (typeof keeps
 * the stub and the call in step with the header). */
#define LAZYLIB_FN(lib, ret, name, params, args, fail)                                             \
	ret name params                                                                            \
	{                                                                                          \
		static __typeof__(name) *fp;                                                       \
		__typeof__(name) *f = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);                      \
		if (f == NULL) {                                                                   \
			f = (__typeof__(name) *)lazylib_sym(lib##_SONAME, &lib##_handle, #name);   \
			__atomic_store_n(&fp, f, __ATOMIC_RELEASE);                                \
		}                                                                                  \
		return f != NULL ? f args : (fail);                                                \
	}

/* The same for a function without a result. */
#define LAZYLIB_VOID(lib, name, params, args)                                                      \
	void name params                                                                           \
	{                                                                                          \
		__typeof__(name) *f =                                                              \
		        (__typeof__(name) *)lazylib_sym(lib##_SONAME, &lib##_handle, #name);       \
		if (f != NULL)                                                                     \
			f args;                                                                    \
	}

#endif
