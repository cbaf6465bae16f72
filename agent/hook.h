/*
 * hook.h: the RUN_HOOK action: run a command on the host with a timeout and
 * an environment, and report its exit code and the tail of its output.
 *
 * The command runs with cwd "/", in its own session, with a small fixed
 * environment (PATH, HOME, LANG, DROVER_DEPLOYMENT, DROVER_STEP, DROVER_HOOK)
 * plus the hook's env, which may override those. Its whole output is kept in
 * LOG_DIR/hooks/<hook>-<step>.log (capped); the report carries the last
 * PROC_TAIL_MAX bytes.
 */
#ifndef DRV_AGENT_HOOK_H
#define DRV_AGENT_HOOK_H

#include <stdint.h>

#include "drover.pb-c.h"
#include "step.h"
#include "stop_token.h"

#define HOOK_DEFAULT_TIMEOUT_MS (10 * 60 * 1000)
#define HOOK_GRACE_MS           5000

/* While the hook runs, STATE_DIR/hooks/<step>.pid names its process, so an
 * agent that died under it can kill the orphan (hook_reap_orphans). */
int hook_run(const Drover__Instruction *ins, const char *state_dir, const char *log_dir,
             const struct stop_token *cancel, struct step_outcome *out);

/* Kill (SIGTERM, then SIGKILL) hooks a dead agent left running, and remove
 * their pid files. Returns how many were still running. */
int hook_reap_orphans(const char *state_dir);

#endif
