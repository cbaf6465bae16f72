/* lazy_systemd.c: libsystemd's sd-bus and sd-journal, loaded on first use
 * (lazylib.h): by the systemd driver, the first time a service runs under it,
 * or by a log read from the journal. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-journal.h>

#include "lazylib.h"

#define SYSTEMD_SONAME "libsystemd.so.0"
static void *SYSTEMD_handle;

LAZYLIB_FN(SYSTEMD, int, sd_bus_open_system, (sd_bus * *ret), (ret), -ENOSYS)
LAZYLIB_FN(SYSTEMD, int, sd_bus_process, (sd_bus * bus, sd_bus_message **r), (bus, r), -ENOSYS)
LAZYLIB_FN(SYSTEMD, int, sd_bus_wait, (sd_bus * bus, uint64_t usec), (bus, usec), -ENOSYS)
LAZYLIB_FN(SYSTEMD, sd_bus *, sd_bus_flush_close_unref, (sd_bus * bus), (bus), NULL)
LAZYLIB_FN(SYSTEMD, sd_bus_slot *, sd_bus_slot_unref, (sd_bus_slot * s), (s), NULL)
LAZYLIB_FN(SYSTEMD, sd_bus_message *, sd_bus_message_unref, (sd_bus_message * m), (m), NULL)
LAZYLIB_FN(SYSTEMD, const char *, sd_bus_message_get_path, (sd_bus_message * m), (m), NULL)
LAZYLIB_FN(SYSTEMD, int, sd_bus_message_skip, (sd_bus_message * m, const char *types), (m, types),
           -ENOSYS)
LAZYLIB_FN(SYSTEMD, int, sd_bus_message_enter_container,
           (sd_bus_message * m, char type, const char *contents), (m, type, contents), -ENOSYS)
LAZYLIB_FN(SYSTEMD, int, sd_bus_message_exit_container, (sd_bus_message * m), (m), -ENOSYS)
LAZYLIB_FN(SYSTEMD, int, sd_bus_get_property_trivial,
           (sd_bus * bus, const char *dest, const char *path, const char *iface, const char *member,
            sd_bus_error *e, char type, void *ret),
           (bus, dest, path, iface, member, e, type, ret), -ENOSYS)
LAZYLIB_FN(SYSTEMD, int, sd_bus_get_property_string,
           (sd_bus * bus, const char *dest, const char *path, const char *iface, const char *member,
            sd_bus_error *e, char **ret),
           (bus, dest, path, iface, member, e, ret), -ENOSYS)
LAZYLIB_FN(SYSTEMD, int, sd_bus_match_signal,
           (sd_bus * bus, sd_bus_slot **ret, const char *sender, const char *path,
            const char *iface, const char *member, sd_bus_message_handler_t cb, void *data),
           (bus, ret, sender, path, iface, member, cb, data), -ENOSYS)
LAZYLIB_FN(SYSTEMD, int, sd_bus_error_is_set, (const sd_bus_error *e), (e), 0)
LAZYLIB_FN(SYSTEMD, int, sd_bus_path_encode, (const char *prefix, const char *id, char **ret),
           (prefix, id, ret), -ENOSYS)
LAZYLIB_FN(SYSTEMD, int, sd_bus_path_decode, (const char *path, const char *prefix, char **ret),
           (path, prefix, ret), -ENOSYS)
LAZYLIB_VOID(SYSTEMD, sd_bus_error_free, (sd_bus_error * e), (e))

/* sd-journal: `drover logs` of a systemd-driver service (logjournal.c). */
LAZYLIB_FN(SYSTEMD, int, sd_journal_open, (sd_journal * *ret, int flags), (ret, flags), -ENOSYS)
LAZYLIB_VOID(SYSTEMD, sd_journal_close, (sd_journal * j), (j))
LAZYLIB_FN(SYSTEMD, int, sd_journal_previous, (sd_journal * j), (j), -ENOSYS)
LAZYLIB_FN(SYSTEMD, int, sd_journal_seek_tail, (sd_journal * j), (j), -ENOSYS)
LAZYLIB_FN(SYSTEMD, int, sd_journal_get_realtime_usec, (sd_journal * j, uint64_t *ret), (j, ret),
           -ENOSYS)
LAZYLIB_FN(SYSTEMD, int, sd_journal_set_data_threshold, (sd_journal * j, size_t sz), (j, sz),
           -ENOSYS)
LAZYLIB_FN(SYSTEMD, int, sd_journal_get_data,
           (sd_journal * j, const char *field, const void **data, size_t *l), (j, field, data, l),
           -ENOSYS)
LAZYLIB_FN(SYSTEMD, int, sd_journal_add_match, (sd_journal * j, const void *data, size_t size),
           (j, data, size), -ENOSYS)

/* The variadic calls through their va_list forms (what libsystemd's own
 * variadic functions do). */
int sd_bus_call_method(sd_bus *bus, const char *dest, const char *path, const char *iface,
                       const char *member, sd_bus_error *e, sd_bus_message **reply,
                       const char *types, ...)
{
	__typeof__(sd_bus_call_methodv) *f = (__typeof__(sd_bus_call_methodv) *)lazylib_sym(
	        SYSTEMD_SONAME, &SYSTEMD_handle, "sd_bus_call_methodv");
	va_list ap;
	int r;

	if (f == NULL)
		return -ENOSYS;
	va_start(ap, types);
	r = f(bus, dest, path, iface, member, e, reply, types, ap);
	va_end(ap);
	return r;
}

int sd_bus_message_read(sd_bus_message *m, const char *types, ...)
{
	__typeof__(sd_bus_message_readv) *f = (__typeof__(sd_bus_message_readv) *)lazylib_sym(
	        SYSTEMD_SONAME, &SYSTEMD_handle, "sd_bus_message_readv");
	va_list ap;
	int r;

	if (f == NULL)
		return -ENOSYS;
	va_start(ap, types);
	r = f(m, types, ap);
	va_end(ap);
	return r;
}
