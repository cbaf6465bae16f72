/*
 * hello.h: checking an agent's Hello and turning what it says about itself
 * (labels, host facts, running releases) into the JSON kept in the store.
 *
 * Everything here comes from a peer that is not trusted yet, so every list
 * and string has a cap, and strings that are not valid UTF-8 are refused.
 */
#ifndef DRV_HELLO_H
#define DRV_HELLO_H

#include <stdbool.h>

#include "drover.pb-c.h"

#define HELLO_LABELS_MAX   64
#define HELLO_LABEL_KEY    63
#define HELLO_LABEL_VALUE  255
#define HELLO_RELEASES_MAX 256
#define HELLO_STRING_MAX   1024

/* The JSON texts (malloc'd; free with hello_json_free). */
struct hello_json {
	char *labels;   /* {"tier": "core"} */
	char *facts;    /* {"hostname": ..., "os", "arch", "cpus", "mem_bytes", "boot_id"} */
	char *releases; /* [{"service", "version", "digest", "state", ...}] */
};

/* DRV_EINVAL (with a reason in why) if the Hello breaks a rule. */
int hello_check(const Drover__Hello *h, char *why, size_t why_len);
int hello_to_json(const Drover__Hello *h, struct hello_json *out);
void hello_json_free(struct hello_json *j);
/* Releases of a Report, same format as in hello_json. */
char *hello_releases_json(Drover__Release *const *rel, size_t n);
/* At most HELLO_RELEASES_MAX, every string short and UTF-8 (a Poll's). */
bool hello_releases_ok(Drover__Release *const *rel, size_t n);

#endif
