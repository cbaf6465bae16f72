/*
 * sdnotify.h: tell the service manager about our state (sd_notify protocol),
 * without linking libsystemd.
 *
 * systemd starts a Type=notify service with NOTIFY_SOCKET set to the path
 * of an AF_UNIX datagram socket ("/run/systemd/notify", or "@name" for the
 * abstract namespace). A daemon sends one datagram of newline-separated
 * KEY=VALUE assignments: "READY=1" once it serves, "STOPPING=1" when it shuts
 * down, "STATUS=..." for `systemctl status`, "WATCHDOG=1" as a keep-alive.
 *
 * Each daemon calls, once it is ready to do its job (listening, config and
 * keys loaded, database open):
 *
 *     drv_sd_notify("READY=1");
 *
 * Without NOTIFY_SOCKET (started by hand, in tests) every call is a no-op that
 * returns DRV_OK, so callers need not check whether systemd is there.
 */
#ifndef DRV_SDNOTIFY_H
#define DRV_SDNOTIFY_H

/* Largest state string sent in one datagram, in bytes. */
#define DRV_SD_NOTIFY_MAX 1024

/*
 * Send state (e.g. "READY=1" or "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET.
 * DRV_OK when sent or when NOTIFY_SOCKET is unset or empty; DRV_EINVAL for a
 * NULL/empty/over-long state or a malformed socket address; DRV_ESYS when the
 * socket cannot be created or the datagram cannot be sent (errno tells).
 */
int drv_sd_notify(const char *state);

/* printf-style drv_sd_notify(); the formatted text is capped as above. */
__attribute__((format(printf, 1, 2))) int drv_sd_notifyf(const char *fmt, ...);

#endif
