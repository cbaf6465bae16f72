/*
 * enroll_rules.h: the label constraints of an enrollment token (no I/O).
 *
 * A token may be limited to labels: `--label tier=web --label tier=api
 * --label zone=a` allows only agents whose labels hold tier=web or tier=api
 * AND zone=a. Labels the token does not name are free. Kept as JSON:
 * {"tier": ["api", "web"], "zone": ["a"]} ({} = no constraint).
 */
#ifndef DRV_ENROLL_RULES_H
#define DRV_ENROLL_RULES_H

#include <stddef.h>

#define ENROLL_RULES_MAX 64 /* KEY=VALUE pairs in one token */

/* "KEY=VALUE" texts to the JSON form (*out malloc'd). DRV_EINVAL with the
 * reason in why if one is malformed (empty or over-long key or value, no
 * '=', not UTF-8, too many). */
int enroll_rules_parse(const char *const *kv, size_t n, char **out, char *why, size_t why_len);
/* DRV_OK if the agent's labels (a JSON object of strings, as hello.c makes
 * it) satisfy the rules (JSON as above); DRV_EPERM with the first label at
 * fault in why; DRV_EINVAL if either text is not what it should be. */
int enroll_rules_allow(const char *rules_json, const char *labels_json, char *why, size_t why_len);

#endif
