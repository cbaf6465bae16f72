/*
 * hook.c: RUN_HOOK. A hook runs as root with every capability unless the
 * plan names a user (backups and migrations often need root); with a user
 * it gets no capabilities, no supplementary groups and no_new_privs.
 */
#include "hook.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomicfile.h"
#include "err.h"
#include "log.h"
#include "pidfile.h"

static void safe_part(const char *in, char *out, size_t size)
{
	size_t i = 0;

	for (; in[i] != '\0' && i + 1 < size; i++) {
		char c = in[i];
		out[i] = (c == '.' || c == '-' || c == '_' || (c >= '0' && c <= '9') ||
		          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		                 ? c
		                 : '_';
	}
	out[i] = '\0';
	if (i == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
		snprintf(out, size, "hook");
}

static int open_log(const char *log_dir, const Drover__Instruction *ins)
{
	char dir[4096], path[4300], name[65], step[65];

	if (log_dir == NULL)
		return -1;
	snprintf(dir, sizeof(dir), "%s/hooks", log_dir);
	if (drv_mkdirs(dir, 0750) != DRV_OK)
		return -1;
	safe_part(ins->hook->name, name, sizeof(name));
	safe_part(ins->step_id, step, sizeof(step));
	snprintf(path, sizeof(path), "%s/%s-%s.log", dir, name, step);
	return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
}

static int build_env(const Drover__Instruction *ins, struct proc_env *env)
{
	const Drover__Hook *h = ins->hook;
	int rc = proc_env_set(env, "PATH", PROC_DEFAULT_PATH);

	if (rc == DRV_OK)
		rc = proc_env_set(env, "HOME", "/");
	if (rc == DRV_OK)
		rc = proc_env_set(env, "LANG", "C.UTF-8");
	if (rc == DRV_OK)
		rc = proc_env_set(env, "DROVER_DEPLOYMENT", ins->deployment_id);
	if (rc == DRV_OK)
		rc = proc_env_set(env, "DROVER_STEP", ins->step_id);
	if (rc == DRV_OK)
		rc = proc_env_set(env, "DROVER_HOOK", h->name);
	for (size_t i = 0; rc == DRV_OK && i < h->n_env; i++)
		rc = proc_env_set(env, h->env[i]->key, h->env[i]->value);
	return rc;
}

static void describe(const Drover__Hook *h, const struct proc_result *r, int64_t timeout,
                     struct step_outcome *o)
{
	memcpy(o->tail, r->tail, r->tail_len + 1);
	o->exit_code = r->exit_code;
	if (r->timed_out)
		step_fail(o, "hook %s timed out after %lld ms and was killed", h->name,
		          (long long)timeout);
	else if (r->cancelled)
		step_fail(o, "hook %s was killed: the agent is stopping", h->name);
	else if (r->signo != 0)
		step_fail(o, "hook %s was killed by signal %d", h->name, r->signo);
	else if (r->exit_code != 0)
		step_fail(o, "hook %s exited with status %d", h->name, r->exit_code);
	else
		step_ok(o, "hook %s succeeded in %lld ms", h->name, (long long)r->duration_ms);
}

static void pid_path(const char *state_dir, const char *step_id, char *buf, size_t size)
{
	char step[65];

	safe_part(step_id, step, sizeof(step));
	snprintf(buf, size, "%s/hooks/%s.pid", state_dir, step);
}

struct pid_arg {
	const char *path;
	int rc; /* pidfile_write's result, for the step's message */
};

/* Before the hook execs (proc_spec.on_fork): a hook runs only once its pid
 * file names it, so the next agent can stop one an agent killed at any
 * point left behind (hook_reap_orphans). The child waits for this, so even
 * a hook that would exit at once is still there to be named. */
static int on_fork(pid_t pid, void *arg)
{
	struct pid_arg *pa = arg;

	pa->rc = pidfile_write(pa->path, pid);
	if (pa->rc != DRV_OK)
		drv_warn("hook", "cannot write the hook's pid file: not running it",
		         "path=%s error=\"%s\"", pa->path, drv_strerror(pa->rc));
	return pa->rc;
}

int hook_reap_orphans(const char *state_dir)
{
	char dir[4096], path[4400];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/hooks", state_dir);
	d = opendir(dir);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		pid_t pid;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (pidfile_alive(path, &pid) == DRV_OK) {
			drv_warn("hook", "killing a hook left running by a previous agent",
			         "pid=%d file=%s", (int)pid, de->d_name);
			proc_stop_group(pid, HOOK_GRACE_MS, false);
			n++;
		}
		pidfile_remove(path);
	}
	closedir(d);
	return n;
}

int hook_run(const Drover__Instruction *ins, const char *state_dir, const char *log_dir,
             const struct stop_token *cancel, struct step_outcome *out)
{
	char pidf[4400], hooks_dir[4200];
	const Drover__Hook *h = ins->hook;
	int64_t timeout = h->timeout_ms ? h->timeout_ms
	                                : (ins->step_deadline_ms ? ins->step_deadline_ms
	                                                         : HOOK_DEFAULT_TIMEOUT_MS);
	struct proc_result *r;
	struct proc_env env;
	struct privs pv;
	char **argv = NULL, why[300];
	int rc, log_fd, child_errno = 0;

	if (h->n_run == 0 || h->run[0][0] == '\0')
		return step_fail(out, "hook %s has no command", h->name);
	if (h->user == NULL || h->user[0] == '\0')
		privs_root(&pv);
	else if (privs_resolve(h->user, h->group, "root", NULL, 0, true, &pv, why, sizeof(why)) !=
	         DRV_OK)
		return step_fail(out, "hook %s: %s", h->name, why);
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return DRV_ENOMEM;
	proc_env_init(&env);
	rc = build_env(ins, &env);
	if (rc == DRV_OK)
		rc = proc_argv_dup(h->run, h->n_run, &argv);
	if (rc != DRV_OK)
		goto out;
	log_fd = open_log(log_dir, ins);
	snprintf(hooks_dir, sizeof(hooks_dir), "%s/hooks", state_dir);
	drv_mkdirs(hooks_dir, 0750);
	pid_path(state_dir, ins->step_id, pidf, sizeof(pidf));
	struct pid_arg pa = {.path = pidf, .rc = DRV_OK};
	struct proc_spec spec = {.argv = argv,
	                         .envp = env.vars,
	                         .cwd = "/",
	                         .out_fd = -1,
	                         .privs = &pv,
	                         .on_fork = on_fork,
	                         .on_fork_arg = &pa};
	drv_info("hook", "running hook", "hook=%s step=%s cmd=%s user=\"%s\" timeout_ms=%lld",
	         h->name, ins->step_id, argv[0], pv.user, (long long)timeout);
	rc = proc_run(&spec, timeout, HOOK_GRACE_MS, cancel, log_fd, r, &child_errno);
	pidfile_remove(pidf);
	if (log_fd >= 0)
		close(log_fd);
	if (rc == DRV_OK) {
		describe(h, r, timeout, out);
	} else if (pa.rc != DRV_OK) {
		out->exit_code = 127;
		rc = step_fail(out, "hook %s not run: cannot write its pid file %s: %s", h->name,
		               pidf, drv_strerror(pa.rc));
	} else {
		out->exit_code = 127;
		rc = step_fail(out, "hook %s: cannot run %s as %s: %s", h->name, argv[0], pv.user,
		               strerror(child_errno ? child_errno : ENOENT));
	}
	drv_info("hook", out->ok ? "hook succeeded" : "hook failed", "hook=%s step=%s exit=%d",
	         h->name, ins->step_id, out->exit_code);
out:
	proc_argv_free(argv);
	proc_env_free(&env);
	free(r);
	return rc;
}
