/*
 * notify.h: webhook notifications (deployment started, tier done, paused,
 * awaiting promotion, rolled back, succeeded, failed, awaiting approval).
 *
 * notify_post() never blocks the caller (the sequencer's owner thread): it
 * puts a delivery on a bounded queue and returns. One worker thread POSTs
 * each delivery with libcurl, signs the body with HMAC-SHA256 when the target
 * has a secret (header X-Drover-Signature: sha256=<hex>), and retries
 * failures (connection errors, 408, 429, 5xx) with exponential backoff. A
 * full queue drops the new delivery and counts it; nothing else is lost
 * silently: every final failure is logged with the URL and the reason.
 */
#ifndef DRV_NOTIFY_H
#define DRV_NOTIFY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum notify_format {
	NOTIFY_FORMAT_JSON,  /* drover's own JSON document */
	NOTIFY_FORMAT_SLACK, /* {"text": "..."}: Slack-compatible incoming webhook */
};

/* The event kinds a plan can subscribe to (notify[].events). */
enum notify_event {
	NOTIFY_STARTED,
	NOTIFY_TIER_DONE,
	NOTIFY_PAUSED,
	NOTIFY_AWAITING_PROMOTION,
	NOTIFY_ROLLED_BACK,
	NOTIFY_SUCCEEDED,
	NOTIFY_FAILED,
	NOTIFY_AWAITING_APPROVAL, /* a deployment waits for approval */
	NOTIFY_EVENT_COUNT
};

struct notify_target {
	const char *url;
	const char *secret; /* HMAC key; NULL or "" = unsigned */
	uint32_t events;    /* bit mask of 1u << enum notify_event; 0 = all */
	enum notify_format format;
};

struct notify_config {
	size_t queue_max;       /* deliveries waiting at most (default 1024) */
	unsigned max_attempts;  /* per delivery (default 5) */
	int64_t backoff_ms;     /* first retry delay, doubled each time (default 500) */
	int64_t backoff_max_ms; /* cap (default 30000) */
	int64_t timeout_ms;     /* per request (default 5000) */
};

struct notify_stats {
	uint64_t queued, delivered, retried, failed, dropped;
};

struct notifier;

int notify_new(const struct notify_config *cfg, struct notifier **out);
/* Stops the worker. Deliveries still queued are logged as abandoned. */
void notify_free(struct notifier *n);

/* "tier_done" <-> NOTIFY_TIER_DONE. */
const char *notify_event_name(enum notify_event ev);
int notify_event_parse(const char *name, enum notify_event *out);

/*
 * Queue the event for every target that subscribed to it. `fields` (may be
 * NULL) is merged into the JSON document: deployment, version, tier, ...;
 * the caller keeps its reference. DRV_ETOOBIG if the queue was full for at
 * least one target (that delivery is dropped and counted).
 */
int notify_post(struct notifier *n, const struct notify_target *targets, size_t n_targets,
                enum notify_event ev, const json_t *fields);

void notify_get_stats(struct notifier *n, struct notify_stats *out);

/* Block until the queue is empty and no delivery is in flight, or timeout.
 * For tests and clean shutdown. DRV_ETIMEDOUT if still busy. */
int notify_drain(struct notifier *n, int64_t timeout_ms);

/* The body and signature header value that would be sent (tests, docs).
 * *body_out is malloc'd. sig_out gets "sha256=<64 hex>" or "" if no secret. */
int notify_render(const struct notify_target *t, enum notify_event ev, const json_t *fields,
                  int64_t at_ms, char **body_out, char sig_out[80]);

#endif
