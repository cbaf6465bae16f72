/* test_linkstats.c: link counters and their JSON / Prometheus forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "linkstats.h"

static void counts_and_rejects(void **state)
{
	(void)state;
	struct drv_linkstats s;

	drv_linkstats_reset();
	drv_linkstats_inc(DRV_STAT_POLLS);
	drv_linkstats_add(DRV_STAT_RX_BYTES, 100);
	drv_linkstats_reject(DROVER__REJECT_REASON__REJECT_BAD_SIGNATURE);
	drv_linkstats_reject(DROVER__REJECT_REASON__REJECT_BAD_SIGNATURE);
	drv_linkstats_reject((Drover__RejectReason)99); /* out of range: unspecified */
	drv_linkstats_get(&s);
	assert_int_equal(s.v[DRV_STAT_POLLS], 1);
	assert_int_equal(s.v[DRV_STAT_RX_BYTES], 100);
	assert_int_equal(s.rejected[DROVER__REJECT_REASON__REJECT_BAD_SIGNATURE], 2);
	assert_int_equal(s.rejected[0], 1);
	assert_int_equal(drv_linkstats_rejected_total(), 3);
	assert_string_equal(drv_reject_name(DROVER__REJECT_REASON__REJECT_ID_TAKEN), "id_taken");
	assert_string_equal(drv_stat_name(DRV_STAT_INSTR_DUPLICATE), "instructions_duplicate");
}

static void json_and_prometheus(void **state)
{
	(void)state;
	char *text;

	drv_linkstats_reset();
	drv_linkstats_reject(DROVER__REJECT_REASON__REJECT_REPLAY);
	drv_linkstats_inc(DRV_STAT_INSTR_ACKED);
	assert_int_equal(drv_linkstats_json(&text), DRV_OK);
	assert_non_null(strstr(text, "\"instructions_acked\": 1, "));
	assert_non_null(strstr(text, "\"replay\": 1, "));
	assert_non_null(strstr(text, "\"stale_epoch\": 0}, \"rejected_total\": 1}\n"));
	free(text);
	assert_int_equal(drv_linkstats_prometheus("drover", &text), DRV_OK);
	assert_non_null(strstr(text, "drover_link_instructions_acked_total 1\n"));
	assert_non_null(strstr(text, "drover_link_rejected_total{reason=\"replay\"} 1\n"));
	assert_non_null(strstr(text, "# TYPE drover_link_polls_total counter\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(counts_and_rejects),
	        cmocka_unit_test(json_and_prometheus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
