/*
 * fuzz_enroll_rules.c: enrollment token label rules (link/enroll_rules.c):
 * KEY=VALUE texts from the CLI or API, and the rules and labels JSON as
 * stored, on arbitrary bytes. The input is split at NUL bytes: the first
 * parts are rules, the last one the agent's labels JSON.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enroll_rules.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *rules = NULL, why[160];
	const char *kv[ENROLL_RULES_MAX + 2];
	size_t n = 0;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (char *p = buf; p < buf + size + 1 && n < ENROLL_RULES_MAX + 2; p += strlen(p) + 1)
		kv[n++] = p;
	if (n > 1 && enroll_rules_parse(kv, n - 1, &rules, why, sizeof(why)) == DRV_OK) {
		enroll_rules_allow(rules, kv[n - 1], why, sizeof(why));
		free(rules);
	}
	/* the stored forms themselves may be anything (a hand-edited database) */
	enroll_rules_allow(buf, buf, why, sizeof(why));
	if (n > 1)
		enroll_rules_allow(kv[0], kv[n - 1], why, sizeof(why));
	free(buf);
	return 0;
}
