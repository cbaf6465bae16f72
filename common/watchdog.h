/*
 * watchdog.h: a deadline for shutting down.
 *
 * NNG 1.5.2 (Debian 12) can hang in nng_close() when a TLS connection was
 * still being negotiated (a plain-TCP client on a tls+tcp:// port, say).
 * Both daemons arm a watchdog before closing their sockets: if shutdown has
 * not finished when it fires, it logs and ends the process with _exit().
 * Everything durable is in SQLite (committed transactions) or written
 * atomically, so nothing is lost by not finishing the teardown.
 */
#ifndef DRV_WATCHDOG_H
#define DRV_WATCHDOG_H

#include <stdint.h>

struct drv_watchdog;

/* Arm: after ms, log what and _exit(code). */
int drv_watchdog_start(int64_t ms, const char *what, int code, struct drv_watchdog **out);
/* Name the step shutdown is in now (what must outlive the watchdog);
 * NULL w is fine. */
void drv_watchdog_phase(struct drv_watchdog *w, const char *what);
/* Disarm and free (NULL is fine). */
void drv_watchdog_stop(struct drv_watchdog *w);

/*
 * Run fn(arg) on a thread of its own and wait at most ms for it. DRV_OK when
 * it returned in time; DRV_ETIMEDOUT when it did not (it is logged with
 * what): fn keeps running detached, so whatever it uses must stay valid until
 * the process exits. DRV_ESYS if no thread could be made (fn did not run).
 * For teardown steps in third-party code that can block forever (NNG 1.5.2's
 * nng_close, docs/reliability.md).
 */
int drv_run_within(int64_t ms, const char *what, void (*fn)(void *), void *arg);

#endif
