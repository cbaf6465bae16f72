#!/usr/bin/env bash
# approve_ui.sh: the dashboard's approve and deny buttons in headless
# Chromium against a real droverd (CTest e2e_approve_ui): droverd, one agent
# and a registry in namespaces; droverd.yaml's environment "production"
# needs one approval (role approver). The token "release" (an approver
# too) starts two deployments that await approval; ui/approve.js
# (playwright-core driving Debian's chromium inside the control namespace)
# checks that release's own click on approve is refused (four eyes) and
# shown, that the approver "lead" approves one with a comment from the page
# (it then runs), and denies the other with a reason. This script then
# checks the audit log has the refusal, the approval and the denial, each
# by its token, and that the approved deployment succeeded. The same
# buttons then decide two canaries of environment "stepwise" waiting for
# approval at their 50% step: the approved one goes on and succeeds, the
# denied one rolls back.
#
#   sudo bash tests/e2e/approve_ui.sh
#
# Exits 77, loudly, without root, chromium, node or playwright-core.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"
# shellcheck source=ui/plans.sh
source "$E2E_DIR/ui/plans.sh"

ops_require curl jq
ops_require_browser "the approve buttons are"

net_up core-1 || fail "net_up"
registry_up || fail "registry"
images_build project-coordinator || fail "images_build"
images_push project-coordinator || fail "images_push"
drover_control_init || fail "droverd init"
cat >>"$DROVERD_DIR/droverd.yaml" <<EOT
environments:
  production:
    approval: { approvers: 1, role: approver }
  stepwise:
    approval: { approvers: 1, role: approver, at_canary_step: 50% }
EOT
drover_control_start || fail "droverd start"
drover_agents_up core-1 || fail "the agent did not connect"
ok "droverd (production needs one approval), registry and core-1 up"

tok() { "$(e2e_bin droverd)" token create --role approver --name "$1" --config "$DROVERD_DIR/droverd.yaml"; }
RELEASE=$(tok release) || fail "token release"
LEAD=$(tok lead) || fail "token lead"

pc=$(image_ref project-coordinator v1) || fail "image_ref"
plan() { # FILE VERSION [ENVIRONMENT PORT STRATEGY]
	cat >"$1" <<PLAN
deployment: approve-ui-$2
version: "$2"
environment: ${3:-production}
defaults:
  driver: exec
  health: { http: { port: ${4:-8080}, path: /health }, interval: 250ms, timeout: 1s,
            healthy_threshold: 2, unhealthy_threshold: 2, deadline: 30s }
tiers:
  - name: core
    services:
      - name: project-coordinator-$2
        image: $pc
        hosts: [core-1]
        command: [/bin/berry-svc, --name, project-coordinator, --port, "${4:-8080}"]
        ${5:+strategy: $5}
PLAN
}
submit() { # FILE -> id
	in_ns control curl -sS --max-time 60 -X POST -H "Authorization: Bearer $RELEASE" \
		--data-binary "@$1" "$DROVER_ADDR/v1/deployments" | jq -r .id
}
plan "$E2E_RUN/a.yaml" a
plan "$E2E_RUN/b.yaml" b
DEP=$(submit "$E2E_RUN/a.yaml")
DENIED=$(submit "$E2E_RUN/b.yaml")
for id in "$DEP" "$DENIED"; do
	[[ $(drover_cli status --json "$id" | jq -r .state) == awaiting_approval ]] ||
		fail "$id: $(drover_cli status --json "$id" | jq -c '{state, reason}')"
done
ok "release started $DEP and $DENIED; both await approval"

mkdir -p "$E2E_RUN/ui"
in_ns control env PLAYWRIGHT_DIR="$PLAYWRIGHT_DIR" DROVER_URL="$DROVER_ADDR" \
	REQUESTER_TOKEN="$RELEASE" APPROVER_TOKEN="$LEAD" APPROVER=lead DEPLOYMENT="$DEP" \
	DENIED="$DENIED" OUT_DIR="$E2E_RUN/ui" HOME="$E2E_RUN/ui" node "$E2E_DIR/ui/approve.js" || {
	cp -f "$E2E_RUN"/ui/approve-failure.* "$E2E_BUILD_DIR/" 2>/dev/null || true
	fail "the approve checks failed (page saved as $E2E_BUILD_DIR/approve-failure.png/.html)"
}

# The same buttons on canaries waiting at their 50% step (one host: the
# step starts it; then the approval): approve goes on, deny rolls back.
CANARY="{ type: canary, steps: [50%, 100%], pause: 1s }"
plan "$E2E_RUN/c.yaml" c stepwise 8081 "$CANARY"
plan "$E2E_RUN/d.yaml" d stepwise 8082 "$CANARY"
STEP=$(submit "$E2E_RUN/c.yaml")
STEP_DENIED=$(submit "$E2E_RUN/d.yaml")
at_step() { [[ $(drover_cli status --json "$1" | jq -r .approval.step) == 50% ]]; }
for id in "$STEP" "$STEP_DENIED"; do
	wait_for "$id to wait at its canary step" 90 at_step "$id" ||
		fail "$id: $(drover_cli status --json "$id" | jq -c '{state, reason}')"
done
ok "release started $STEP and $STEP_DENIED; both wait for approval at canary step 50%"
in_ns control env PLAYWRIGHT_DIR="$PLAYWRIGHT_DIR" DROVER_URL="$DROVER_ADDR" \
	REQUESTER_TOKEN="$RELEASE" APPROVER_TOKEN="$LEAD" APPROVER=lead DEPLOYMENT="$STEP" \
	DENIED="$STEP_DENIED" DENIED_STATE=rolled_back \
	DENIED_REASON="denied by lead at canary step 50%: not from here" \
	OUT_DIR="$E2E_RUN/ui" HOME="$E2E_RUN/ui" node "$E2E_DIR/ui/approve.js" || {
	cp -f "$E2E_RUN"/ui/approve-failure.* "$E2E_BUILD_DIR/" 2>/dev/null || true
	fail "the approve checks at a canary step failed (page saved as $E2E_BUILD_DIR/approve-failure.png/.html)"
}
step_ok() { [[ $(drover_cli status --json "$STEP" | jq -r .state) == succeeded ]]; }
wait_for "$STEP to succeed" 120 step_ok || fail "$STEP: $(drover_cli status --json "$STEP" | jq -c '{state, reason}')"
ok "$STEP approved at its step from the page went on and succeeded; $STEP_DENIED rolled back"

dep_ok() { [[ $(drover_cli status --json "$DEP" | jq -r .state) == succeeded ]]; }
wait_for "$DEP to succeed" 120 dep_ok || fail "$DEP: $(drover_cli status --json "$DEP" | jq -c '{state, reason}')"
audit() { drover_cli audit --json --limit 200 | jq --arg p "$1" --arg a "$2" --argjson s "$3" \
	'[.[] | select(.path == $p and .actor == $a and .status == $s)] | length'; }
[[ $(audit "/v1/deployments/$DEP/approve" release 403) -ge 1 ]] || fail "the refused click is not audited"
[[ $(audit "/v1/deployments/$DEP/approve" lead 200) -ge 1 ]] || fail "lead's approval is not audited"
[[ $(audit "/v1/deployments/$DENIED/deny" lead 200) -ge 1 ]] || fail "lead's denial is not audited"
ok "$DEP succeeded; the audit log has release's refused approve (403), lead's approve and deny"
