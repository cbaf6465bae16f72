/*
 * fuzz_plan.c: YAML/JSON -> jansson -> plan validator on arbitrary bytes.
 *
 * A plan that validates is normalized, and the normalized JSON must parse
 * again to the same JSON (anything else is a bug worth a crash).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "err.h"
#include "plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct drv_plan_errors errs = {0};
	struct drv_plan *p = NULL, *q = NULL;
	json_t *j1, *j2;

	if (drv_plan_parse_buffer((const char *)data, size, "fuzz", &p, &errs) != DRV_OK) {
		drv_plan_errors_free(&errs);
		return 0;
	}
	j1 = drv_plan_to_json(p);
	if (j1 == NULL)
		abort();
	if (drv_plan_from_json(j1, NULL, "again", &q, &errs) != DRV_OK)
		abort();
	j2 = drv_plan_to_json(q);
	if (j2 == NULL || !json_equal(j1, j2))
		abort();
	json_decref(j1);
	json_decref(j2);
	drv_plan_free(p);
	drv_plan_free(q);
	drv_plan_errors_free(&errs);
	return 0;
}
