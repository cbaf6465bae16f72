/* test_session.c: session nonces (link/session.c) and enrollment token label
 * rules (link/enroll_rules.c), both pure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "enroll_rules.h"
#include "err.h"
#include "session.h"

static const uint8_t key[SESSION_KEY_LEN] = {1, 2, 3}, other_key[SESSION_KEY_LEN] = {9};
static const uint8_t pk[32] = {7}, pk2[32] = {8};

static void nonce_binds_agent_key_connection_time(void **state)
{
	struct session_claim who = {"web-1", pk, 42};
	struct session_claim other_id = {"web-2", pk, 42}, other_pk = {"web-1", pk2, 42},
	                     other_pipe = {"web-1", pk, 43};
	uint8_t n[SESSION_NONCE_LEN];
	uint64_t ctr = 0;

	(void)state;
	session_nonce_make(key, 17, 1000, &who, n);
	assert_int_equal(session_nonce_check(key, n, sizeof(n), &who, 1000, &ctr), DRV_OK);
	assert_int_equal(ctr, 17);
	assert_int_equal(
	        session_nonce_check(key, n, sizeof(n), &who, 1000 + SESSION_NONCE_TTL_MS, &ctr),
	        DRV_OK);
	assert_int_equal(
	        session_nonce_check(key, n, sizeof(n), &who, 1001 + SESSION_NONCE_TTL_MS, &ctr),
	        DRV_EEXPIRED);
	assert_int_equal(session_nonce_check(key, n, sizeof(n), &who, 999, &ctr), DRV_EEXPIRED);
	assert_int_equal(session_nonce_check(key, n, sizeof(n), &other_id, 1000, &ctr), DRV_EINVAL);
	assert_int_equal(session_nonce_check(key, n, sizeof(n), &other_pk, 1000, &ctr), DRV_EINVAL);
	assert_int_equal(session_nonce_check(key, n, sizeof(n), &other_pipe, 1000, &ctr),
	                 DRV_EINVAL);
	assert_int_equal(session_nonce_check(other_key, n, sizeof(n), &who, 1000, &ctr),
	                 DRV_EINVAL);
	assert_int_equal(session_nonce_check(key, n, sizeof(n) - 1, &who, 1000, &ctr), DRV_EINVAL);
	assert_int_equal(session_nonce_check(key, NULL, 0, &who, 1000, &ctr), DRV_EINVAL);
	n[3] ^= 1; /* another counter: the MAC no longer fits */
	assert_int_equal(session_nonce_check(key, n, sizeof(n), &who, 1000, &ctr), DRV_EINVAL);
}

static void rules_parse_and_allow(void **state)
{
	const char *kv[] = {"tier=web", "tier=api", "zone=a", "tier=web"};
	const char *bad[] = {"tier"}, *empty_key[] = {"=web"}, *empty_val[] = {"tier="};
	char *rules = NULL, why[160];

	(void)state;
	assert_int_equal(enroll_rules_parse(kv, 4, &rules, why, sizeof(why)), DRV_OK);
	assert_string_equal(rules, "{\"tier\":[\"web\",\"api\"],\"zone\":[\"a\"]}");
	assert_int_equal(enroll_rules_allow(rules, "{\"tier\":\"api\",\"zone\":\"a\",\"x\":\"y\"}",
	                                    why, sizeof(why)),
	                 DRV_OK);
	assert_int_equal(
	        enroll_rules_allow(rules, "{\"tier\":\"db\",\"zone\":\"a\"}", why, sizeof(why)),
	        DRV_EPERM);
	assert_non_null(strstr(why, "tier=db"));
	assert_int_equal(enroll_rules_allow(rules, "{\"tier\":\"web\"}", why, sizeof(why)),
	                 DRV_EPERM); /* zone missing */
	assert_int_equal(enroll_rules_allow(rules, "[]", why, sizeof(why)), DRV_EINVAL);
	assert_int_equal(enroll_rules_allow("{}", "{\"tier\":\"db\"}", why, sizeof(why)), DRV_OK);
	free(rules);
	assert_int_equal(enroll_rules_parse(bad, 1, &rules, why, sizeof(why)), DRV_EINVAL);
	assert_int_equal(enroll_rules_parse(empty_key, 1, &rules, why, sizeof(why)), DRV_EINVAL);
	assert_int_equal(enroll_rules_parse(empty_val, 1, &rules, why, sizeof(why)), DRV_EINVAL);
	assert_int_equal(enroll_rules_parse(kv, 0, &rules, why, sizeof(why)), DRV_OK);
	assert_string_equal(rules, "{}");
	free(rules);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(nonce_binds_agent_key_connection_time),
	        cmocka_unit_test(rules_parse_and_allow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
