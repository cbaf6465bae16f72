/*
 * render.h: how the CLI shows deployments. Pure functions from the API's
 * JSON (the deployment object and list of docs/api.md, "Deployments") to
 * text; no I/O and no clock (the caller passes now_ms, wall clock), so the
 * formatting is tested with golden strings (tests/unit/test_ctl_render.c).
 *
 * Every function returns a new NUL-terminated string that the caller frees,
 * or NULL when memory ran out. Text that came from the server is cleaned of
 * control characters before it reaches a terminal. Missing members read as
 * empty strings and zeros, so an older or newer droverd still prints.
 */
#ifndef DRV_CTL_RENDER_H
#define DRV_CTL_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* True for the final states succeeded, failed, rolled_back, aborted. */
bool ctl_state_final(const char *state);
/* The exit status of a final state: 0 succeeded, 1 otherwise (CTL_EXIT_*);
 * -1 for a state that is not final. */
int ctl_state_exit(const char *state);

/* drover status: a header, then tables of tiers, services, hosts (versions
 * before and after, state, duration, message) and hooks. */
char *ctl_render_status(const json_t *dep, int64_t now_ms);

/* drover history: one row per deployment SUMMARY of GET /v1/deployments. */
char *ctl_render_history(const json_t *deployments, int64_t now_ms);

/* One terminal frame of drover deploy --wait: a line per tier and service
 * with progress bars (batches, canary step and weight, hosts done/total),
 * the hosts at work or failed under their service, and the hooks. Lines
 * are cut to width - 1 columns (width <= 0: not cut), so a redraw can
 * move the cursor up by the number of lines. */
char *ctl_render_progress(const json_t *dep, int64_t now_ms, int width);

/* Plain lines for a pipe: what changed from prev (NULL: nothing seen yet)
 * to cur, one line per change, e.g.
 *     core/project-coordinator core-1 succeeded 2.3.0 -> 2.4.0 (3.1s)
 * "" when nothing changed. */
char *ctl_render_changes(const json_t *prev, const json_t *cur);

/*
 * Plain lines for a pipe from the deployment's events, in the order the
 * engine recorded them (their ids): the follower keeps what it printed
 * (deployment state and reason, each tier's and service's progress) and
 * prints one line per change that an event carries ("state", "service",
 * "host", "hook"; other kinds print nothing). An event whose id is not
 * above the last one seen is skipped (a resumed stream). "" when nothing
 * to print.
 */
struct ctl_follow;
/* dep: the deployment object as created (its id, state and phase count as
 * printed); NULL without memory. */
struct ctl_follow *ctl_follow_new(const json_t *dep);
void ctl_follow_free(struct ctl_follow *f);
/* The lines event id (its own id, not the stream's position) adds; "" for
 * one seen before. An event with a lower id than others seen is shown once
 * if it was not (on PostgreSQL an event can commit late), unless a newer
 * one about the same host, service or deployment state was printed. */
char *ctl_render_event(struct ctl_follow *f, int64_t id, const char *kind, const json_t *data);
/* The deployment's state line when dep (the object as read at the end) is
 * in a state the events have not printed yet; "" otherwise. */
char *ctl_follow_end(struct ctl_follow *f, const json_t *dep);

/* drover deploy --dry-run: the coordinator's preview (POST
 * /v1/deployments?dry_run=true) as text: a headline with the counts, the
 * phases in order (prestage, pre hooks, migrations with up and down, each
 * tier's services with their hosts' current -> new release and their
 * batches, canary steps or blue-green switch, health gate and failure
 * budget, post hooks), then offline and skipped hosts. */
char *ctl_render_preview(const json_t *preview);

/* The last line: "dep-7 berrys 2.4.0 succeeded in 3m02s" (and the reason). */
char *ctl_render_summary(const json_t *dep, int64_t now_ms);

/* The errors of a refused plan (the body's "error" member of a 400
 * invalid-plan), one per line: "FILE:LINE: field: message"; an error
 * without a line is "FILE: field: message". */
char *ctl_render_plan_errors(const json_t *error, const char *file);

#endif
