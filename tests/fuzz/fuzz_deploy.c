/*
 * fuzz_deploy.c: what the deployment engine parses itself: a metric
 * endpoint's answer (deploy_metric_value, network input) and a plan error
 * line split into line, field and message for the API (deploy_api.c).
 *
 * Input: the first byte picks the parser, the rest is its text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deploy_api.h"
#include "deploy_int.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	double v;

	if (size < 1 || size > 70000)
		return 0;
	text = malloc(size);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] & 1) {
		if (deploy_metric_value(text, &v) == DRV_OK && v != v)
			abort(); /* NaN must be refused */
	} else {
		json_t *o = deploy_api_plan_error(text, "plan.yaml");

		if (o != NULL && !json_is_string(json_object_get(o, "message")))
			abort();
		json_decref(o);
	}
	free(text);
	return 0;
}
