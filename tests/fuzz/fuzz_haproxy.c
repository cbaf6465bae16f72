/*
 * fuzz_haproxy: HAProxy runtime API answers ("show servers state", "show
 * stat", the answer to "set ...") through the client's parsers.
 */
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "log.h"
#include "traffic_haproxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct drv_haproxy_servers s;
	struct drv_haproxy_stat st;
	size_t i;

	drv_log_set_level(DRV_LOG_ERROR);
	if (drv_haproxy_parse_servers((const char *)data, size, &s) == DRV_OK) {
		for (i = 0; i < s.n; i++) {
			(void)drv_haproxy_server_up(&s.v[i]);
			(void)drv_haproxy_servers_find(&s, s.v[i].backend, s.v[i].name);
		}
		drv_haproxy_servers_free(&s);
	}
	if (drv_haproxy_parse_stat((const char *)data, size, &st) == DRV_OK) {
		for (i = 0; i < st.nrows && i < 8; i++)
			(void)drv_haproxy_stat_get(&st, st.cells[i * st.ncols],
			                           st.ncols > 1 ? st.cells[i * st.ncols + 1] : "",
			                           "status");
		drv_haproxy_stat_free(&st);
	}
	(void)drv_haproxy_check_empty((const char *)data, size);
	return 0;
}
