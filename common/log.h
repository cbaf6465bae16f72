/*
 * log.h: levelled key=value logging to stderr or a file.
 *
 * A line reads:
 *   ts=2026-11-26T06:10:00.123Z level=info mod=link msg="agent accepted" agent=db-1
 * The caller gives the module, a short message, and optional key=value pairs
 * as a printf format. Lines are capped at DRV_LOG_LINE_MAX bytes.
 */
#ifndef DRV_LOG_H
#define DRV_LOG_H

#include <stdio.h>

#define DRV_LOG_LINE_MAX 2048

enum drv_log_level { DRV_LOG_DEBUG, DRV_LOG_INFO, DRV_LOG_WARN, DRV_LOG_ERROR };

/* Set the minimum level written (default info). */
void drv_log_set_level(enum drv_log_level level);
/* Parse "debug", "info", "warn", "error". */
int drv_log_parse_level(const char *name, enum drv_log_level *out);
/* Log to this file (appending) instead of stderr; NULL returns to stderr. */
int drv_log_open(const char *path);
/* Reopen the log file (after rotation; on SIGHUP). */
int drv_log_reopen(void);
void drv_log_close(void);

__attribute__((format(printf, 4, 5))) void drv_log(enum drv_log_level level, const char *mod,
                                                   const char *msg, const char *kvfmt, ...);

#define drv_debug(mod, msg, ...) drv_log(DRV_LOG_DEBUG, mod, msg, "" __VA_ARGS__)
#define drv_info(mod, msg, ...)  drv_log(DRV_LOG_INFO, mod, msg, "" __VA_ARGS__)
#define drv_warn(mod, msg, ...)  drv_log(DRV_LOG_WARN, mod, msg, "" __VA_ARGS__)
#define drv_error(mod, msg, ...) drv_log(DRV_LOG_ERROR, mod, msg, "" __VA_ARGS__)

#endif
