/* health_exec.c: a command that exits 0 within the timeout is healthy. It
 * runs on the host as the service's user, without capabilities. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "health.h"
#include "proc.h"

static bool probe(const Drover__HealthCheck *hc, const struct health_target *t, uint32_t timeout_ms,
                  char *detail, size_t size)
{
	struct proc_result *r = calloc(1, sizeof(*r));
	struct proc_env env;
	char port[16], **argv = NULL;
	bool ok = false;
	int rc;

	if (t->privs == NULL || r == NULL || hc->n_exec == 0) {
		snprintf(detail, size, "exec: %s",
		         t->privs == NULL ? (t->privs_err ? t->privs_err : "no user")
		         : r              ? "no command"
		                          : "out of memory");
		free(r);
		return false;
	}
	proc_env_init(&env);
	snprintf(port, sizeof(port), "%u", t->port);
	rc = proc_env_set(&env, "PATH", PROC_DEFAULT_PATH);
	if (rc == DRV_OK)
		rc = proc_env_set(&env, "DROVER_PORT", port);
	if (rc == DRV_OK)
		rc = proc_argv_dup(hc->exec, hc->n_exec, &argv);
	struct proc_spec ps = {
	        .argv = argv, .envp = env.vars, .cwd = t->cwd, .out_fd = -1, .privs = t->privs};
	if (rc == DRV_OK)
		rc = proc_run(&ps, timeout_ms, 500, NULL, -1, r, NULL);
	if (rc != DRV_OK) {
		snprintf(detail, size, "exec %s: cannot run", hc->exec[0]);
	} else if (r->timed_out) {
		snprintf(detail, size, "exec %s: timed out after %u ms", hc->exec[0], timeout_ms);
	} else {
		ok = r->exit_code == 0;
		snprintf(detail, size, "exec %s: exit %d %.80s", hc->exec[0], r->exit_code,
		         r->tail_len > 0 ? r->tail : "");
	}
	proc_argv_free(argv);
	proc_env_free(&env);
	free(r);
	return ok;
}

const struct health_kind_ops health_exec_ops = {.name = "exec", .probe = probe};
