/*
 * client.h: the CLI's HTTP/JSON client for droverd's API (libcurl).
 *
 * Requests carry "Authorization: Bearer <ctl->token>", a connect timeout and
 * an overall timeout; replies are capped at CTL_REPLY_MAX bytes. Errors are
 * explained on stderr in one line that says what to do, and mapped to the
 * exit codes of ctl.h:
 *
 *     connection refused / timeout / DNS  -> 3 "cannot reach the coordinator at URL"
 *     401, 403                            -> 3 with the server's message
 *     other 4xx                           -> 2 "FIELD: message" (and line)
 *     5xx, malformed reply                -> 1
 */
#ifndef DRV_CTL_CLIENT_H
#define DRV_CTL_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl.h"

#define CTL_REPLY_MAX (16u << 20)

struct ctl_reply {
	long status;  /* HTTP status; 0 when no answer came */
	json_t *json; /* parsed body when it was JSON, else NULL */
	char *body;   /* raw body, NUL-terminated */
	size_t len;
	char error[256]; /* transport error when status == 0 */
};

/* One request; body may be NULL. DRV_OK when an HTTP answer came (any
 * status), DRV_EIO when the coordinator could not be reached (r->error says
 * why). The caller frees r with ctl_reply_free in both cases. */
int ctl_request(const struct ctl *ctl, const char *method, const char *path,
                const char *content_type, const char *body, size_t len, struct ctl_reply *r);
void ctl_reply_free(struct ctl_reply *r);

/* The exit code for a reply (0 for 2xx). */
int ctl_exit_code(const struct ctl_reply *r);
/* Explain a failed reply on stderr; file (may be NULL) prefixes line
 * numbers: "plan.yaml:12: tiers[0].name: ...". */
void ctl_report(const struct ctl *ctl, const struct ctl_reply *r, const char *file);

/* JSON request (body may be NULL), JSON reply. On 2xx returns 0 and *out
 * (if out is not NULL) gets the parsed reply (caller decrefs; NULL when the
 * reply was empty). Otherwise reports the error and returns its exit code. */
int ctl_call(const struct ctl *ctl, const char *method, const char *path, const json_t *body,
             json_t **out);

/* Percent-encode s for a path segment or query value into out. */
int ctl_escape(const char *s, char *out, size_t cap);

/* ---- server-sent events */

struct ctl_event {
	int64_t id;       /* the event's own (the data's "id"; else the id: field) */
	const char *kind; /* the event: field */
	json_t *data;     /* the data: field parsed (borrowed; NULL if not JSON) */
	const char *raw;  /* the data: field as sent */
};

/* Return 0 to go on; CTL_STREAM_DONE to stop with exit status 0; any other
 * value stops the stream and ctl_events_stream returns it. */
#define CTL_STREAM_DONE 1000
typedef int (*ctl_event_fn)(const struct ctl_event *ev, void *ctx);

/* GET path (with its query) as an event stream, calling fn per event. With
 * follow, a stream that breaks is resumed with Last-Event-ID after a short
 * backoff (giving up with 3 after CTL_RECONNECT_GIVE_UP_S without an
 * answer); without follow, the stream ends when the server ends it.
 * *last_id (in/out) is the resume point (within one call the id: line
 * itself is sent back, a cursor that also names the ids below it still
 * owed: docs/api.md). Returns 0, fn's stop value, or an
 * exit code (errors already explained on stderr). */
#define CTL_RECONNECT_GIVE_UP_S 60
int ctl_events_stream(const struct ctl *ctl, const char *path, bool follow, int64_t *last_id,
                      ctl_event_fn fn, void *ctx);

#endif
