/* test_route.c: route pattern checks and path matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "err.h"
#include "route.h"

static void test_pattern_check(void **state)
{
	(void)state;
	assert_int_equal(drv_route_pattern_check("/"), DRV_OK);
	assert_int_equal(drv_route_pattern_check("/healthz"), DRV_OK);
	assert_int_equal(drv_route_pattern_check("/v1/deployments/{id}/pause"), DRV_OK);
	assert_int_equal(drv_route_pattern_check("/v1/a/{x}/{y_2}"), DRV_OK);
	assert_int_equal(drv_route_pattern_check(""), DRV_EINVAL);
	assert_int_equal(drv_route_pattern_check("v1/agents"), DRV_EINVAL);
	assert_int_equal(drv_route_pattern_check("/v1//agents"), DRV_EINVAL);
	assert_int_equal(drv_route_pattern_check("/v1/agents/"), DRV_OK); /* "/ui/" */
	assert_int_equal(drv_route_pattern_check("/v1//"), DRV_EINVAL);
	assert_int_equal(drv_route_pattern_check("/v1/{}"), DRV_EINVAL);
	assert_int_equal(drv_route_pattern_check("/v1/{Id}"), DRV_EINVAL);
	assert_int_equal(drv_route_pattern_check("/v1/{id"), DRV_EINVAL);
	assert_int_equal(drv_route_pattern_check("/v1/x{id}"), DRV_EINVAL);
	assert_int_equal(drv_route_pattern_check("/v1/{id}/{id}"), DRV_EINVAL);
	assert_int_equal(drv_route_pattern_check("/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}"), DRV_OK);
	assert_int_equal(drv_route_pattern_check("/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}"),
	                 DRV_EINVAL);
	assert_int_equal(drv_route_pattern_check(NULL), DRV_EINVAL);
}

static void test_match_literal(void **state)
{
	struct drv_route_params p;

	(void)state;
	assert_int_equal(drv_route_match("/healthz", "/healthz", &p), DRV_OK);
	assert_int_equal(p.n, 0);
	assert_int_equal(drv_route_match("/", "/", &p), DRV_OK);
	assert_int_equal(drv_route_match("/healthz", "/healthzz", &p), DRV_ENOENT);
	assert_int_equal(drv_route_match("/healthz", "/health", &p), DRV_ENOENT);
	assert_int_equal(drv_route_match("/healthz", "/healthz/", &p), DRV_ENOENT);
	assert_int_equal(drv_route_match("/healthz", "healthz", &p), DRV_ENOENT);
	assert_int_equal(drv_route_match("/v1/agents", "/v1", &p), DRV_ENOENT);
	assert_int_equal(drv_route_match("/v1", "/v1/agents", &p), DRV_ENOENT);
	assert_int_equal(drv_route_match("/", "/x", &p), DRV_ENOENT);
	assert_int_equal(drv_route_match("/x", "/", &p), DRV_ENOENT);
	assert_int_equal(drv_route_match("/x", "", &p), DRV_ENOENT);
	/* A trailing slash is part of the path: "/ui/" and "/ui" are two routes. */
	assert_int_equal(drv_route_match("/ui/", "/ui/", &p), DRV_OK);
	assert_int_equal(drv_route_match("/ui/", "/ui", &p), DRV_ENOENT);
	assert_int_equal(drv_route_match("/ui", "/ui/", &p), DRV_ENOENT);
	assert_int_equal(drv_route_match("/ui/", "/ui/x", &p), DRV_ENOENT);
	assert_int_equal(drv_route_match("/ui/{file}", "/ui/", &p), DRV_ENOENT);
}

static void test_match_params(void **state)
{
	struct drv_route_params p;

	(void)state;
	assert_int_equal(drv_route_match("/v1/deployments/{id}/{action}",
	                                 "/v1/deployments/dep-42/pause", &p),
	                 DRV_OK);
	assert_int_equal(p.n, 2);
	assert_string_equal(drv_route_param(&p, "id"), "dep-42");
	assert_string_equal(drv_route_param(&p, "action"), "pause");
	assert_null(drv_route_param(&p, "other"));
	/* An empty parameter never matches. */
	assert_int_equal(drv_route_match("/v1/agents/{id}/accept", "/v1/agents//accept", &p),
	                 DRV_ENOENT);
	assert_int_equal(drv_route_match("/v1/agents/{id}", "/v1/agents/", &p), DRV_ENOENT);
	/* Nor does a parameter span segments. */
	assert_int_equal(drv_route_match("/v1/agents/{id}", "/v1/agents/a/b", &p), DRV_ENOENT);
}

static void test_match_limits(void **state)
{
	struct drv_route_params p = {.n = 99};
	char path[DRV_ROUTE_PATH_MAX + 16];

	(void)state;
	/* A value of exactly the maximum matches, one byte more does not. */
	memcpy(path, "/a/", 3);
	memset(path + 3, 'x', DRV_ROUTE_VALUE_MAX);
	path[3 + DRV_ROUTE_VALUE_MAX] = '\0';
	assert_int_equal(drv_route_match("/a/{v}", path, &p), DRV_OK);
	assert_int_equal(strlen(drv_route_param(&p, "v")), DRV_ROUTE_VALUE_MAX);
	memset(path + 3, 'x', DRV_ROUTE_VALUE_MAX + 1);
	path[4 + DRV_ROUTE_VALUE_MAX] = '\0';
	p.n = 99;
	assert_int_equal(drv_route_match("/a/{v}", path, &p), DRV_ENOENT);
	/* The output is untouched on failure. */
	assert_int_equal(p.n, 99);
	memset(path, '/', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(drv_route_match("/", path, &p), DRV_ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pattern_check),
	        cmocka_unit_test(test_match_literal),
	        cmocka_unit_test(test_match_params),
	        cmocka_unit_test(test_match_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
