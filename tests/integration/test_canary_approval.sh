#!/usr/bin/env bash
# test_canary_approval.sh: approval at a canary step (docs/environments.md,
# `approval: { at_canary_step: 25% }`) on the real droverd, four real
# drover-agents and a real registry.
#
# Release 1.0.0 runs on c-1..c-4 (environment plain, no approval). Release
# 2.0.0 goes to production (approval at canary step 25%, one approver):
#   - the canary finishes its 25% step (one host on 2.0.0, three on 1.0.0)
#     and waits in awaiting_approval; the webhook says an approval is
#     needed; nothing more starts; `drover promote` does not pass it; the
#     token that started it may not approve it (four eyes);
#   - alice denies: the canary rolls back (every host on 1.0.0 again), the
#     reason names her and the step;
#   - a second run waits at 25% again, survives a restart of droverd with
#     its round, bob approves (a second token): it goes on to 100% and
#     succeeds; `drover status` and the audit log say who approved which
#     step;
#   - hurry (timeout 3s): not approved in time, the canary rolls back.
# Each service only sleeps (it never listens: the four agents share this
# machine's loopback), so health is none; the version each agent runs is
# what the agents report.
TEST_NAME=canary_approval
source "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"

deploy_setup
HOOK_PORT=$(pick_port "$REG_PORT")
"$(mkimage_berry_bin)" --name webhooks --port "$HOOK_PORT" --listen-addr 127.0.0.1 \
	>"$TMP/webhooks.log" 2>&1 &
PIDS[webhooks]=$!

coord_init
set_opt "$COORD/droverd.yaml" insecure_registry true
set_opt "$COORD/droverd.yaml" allow "http://127.0.0.1:$HOOK_PORT/"
cat >>"$COORD/droverd.yaml" <<EOT
environments:
  plain:
    labels: { env: production }
  production:
    labels: { env: production }
    approval: { at_canary_step: 25%, approvers: 1, role: approver, timeout: 1h }
  hurry:
    labels: { env: production }
    approval: { at_canary_step: 25%, timeout: 3s }
  wrong:
    labels: { env: production }
    approval: { at_canary_step: 10% }
EOT
"$DROVERD" --config "$COORD/droverd.yaml" --check >"$TMP/check.out" 2>&1 ||
	fail "droverd --check: $(cat "$TMP/check.out")"
coord_start
for h in c-1 c-2 c-3 c-4; do deploy_agent "$h" tier=web env=production; done
ok "droverd with production (approval at canary step 25%) and four agents"

# plan FILE VERSION: alpha on the four hosts, a canary 25% -> 50% -> 100%.
plan() {
	cat >"$1" <<EOT
deployment: web
version: "$2"
notify:
  - { webhook: "http://127.0.0.1:$HOOK_PORT/approval", events: [awaiting_approval] }
defaults:
  driver: exec
  stop_grace: 2s
  health: none
tiers:
  - name: web
    services:
      - name: alpha
        image: $REG/berrys/berry:$2
        hosts: { labels: { tier: web } }
        command: [/bin/berry-svc, --name, alpha, --port, "1", --listen-addr, 127.0.0.1]
        env: { BERRY_START_DELAY_MS: "36000000" }
        strategy: { type: canary, steps: [25%, 50%, 100%], pause: 1s }
EOT
}
# versions: what each agent runs of alpha, "c-1=2.0.0 c-2=1.0.0 ..."
versions() {
	curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$DROVER_ADDR/v1/agents" |
		jq -r '[(.agents? // .)[] | select(.id | startswith("c-")) |
			"\(.id)=\([.releases[]? | select(.service == "alpha" and .state == "running") | .version] | first // "-")"] | sort | join(" ")'
}
on_new() { versions | grep -o "=$1" | wc -l; }
tok() { "$DROVERD" token create --db "$COORD/droverd.db" --role "$1" --name "$2" 2>/dev/null; }
DEV=$(tok approver dev)
ALICE=$(tok approver alice)
BOB=$(tok approver bob)
[[ -n $DEV && -n $ALICE && -n $BOB ]] || fail "tokens"

# ---- 0. release 1.0.0 everywhere; a step that is not the plan's is refused ----
plan "$TMP/v1.yaml" 1.0.0
plan "$TMP/v2.yaml" 2.0.0
code=$(dep_post "$DEV" "$TMP/v1.yaml" "env=wrong" "$TMP/wrong.json")
[[ $code == 400 && $(jq -r '.error.message' "$TMP/wrong.json") == *"environment wrong asks for approval at canary step 10%, which is not a step before the last of service alpha (steps 25%, 50%, 100%)"* ]] ||
	fail "a step that is not the plan's: $code $(cat "$TMP/wrong.json")"
code=$(dep_post "$DEV" "$TMP/v1.yaml" "env=plain" "$TMP/v1.json")
[[ $code == 201 ]] || fail "v1: $code $(cat "$TMP/v1.json")"
V1=$(jq -r .id "$TMP/v1.json")
wait_for 90 dep_state_is "$V1" succeeded || fail "$V1: $(dep_get "$V1" '{state,reason}')"
wait_for 20 eval '[[ $(on_new 1.0.0) == 4 ]]' || fail "v1 on: $(versions)"
ok "1.0.0 on the four hosts ($(versions)); a step the plan's canary lacks: 400 naming it"

# ---- 1. the canary waits at 25% ----
code=$(dep_post "$DEV" "$TMP/v2.yaml" "env=production" "$TMP/run1.json")
[[ $code == 201 ]] || fail "run 1: $code $(cat "$TMP/run1.json")"
RUN1=$(jq -r .id "$TMP/run1.json")
wait_for 90 dep_state_is "$RUN1" awaiting_approval || fail "$RUN1: $(dep_get "$RUN1" '{state,reason}')"
[[ $(dep_get "$RUN1" .reason) == "canary step 25% of alpha needs 1 approval (role approver): 0 given" ]] ||
	fail "reason: $(dep_get "$RUN1" .reason)"
[[ $(dep_get "$RUN1" .approval.step) == 25% && $(dep_get "$RUN1" '.approval.services | join(",")') == alpha ]] ||
	fail "approval: $(dep_get "$RUN1" .approval)"
wait_for 20 eval '[[ $(on_new 2.0.0) == 1 ]]' || fail "at 25%: $(versions)"
approval_posted() { grep -q "POST /approval" "$TMP/webhooks.log"; }
wait_for 20 approval_posted || fail "no awaiting_approval webhook: $(tail -n 5 "$TMP/webhooks.log")"
sleep 3 # the pause (1s) is long over: nothing more starts
[[ $(on_new 2.0.0) == 1 && $(dep_get "$RUN1" .state) == awaiting_approval ]] ||
	fail "the canary went on without approval: $(versions)"
ok "$RUN1 finished its 25% step and waits ($(versions)); the webhook said so"

prc=0
"$CLI" promote "$RUN1" >"$TMP/promote.out" 2>&1 || prc=$?
[[ $prc != 0 && $(dep_get "$RUN1" .state) == awaiting_approval ]] ||
	fail "promote passed the approval: exit $prc $(cat "$TMP/promote.out")"
rc=0
DROVER_TOKEN=$DEV "$CLI" approve "$RUN1" >"$TMP/self.out" 2>&1 || rc=$?
[[ $rc == 3 ]] && grep -q "four eyes" "$TMP/self.out" || fail "self-approval: exit $rc $(cat "$TMP/self.out")"
ok "drover promote does not pass it (exit $prc: $(head -c 80 "$TMP/promote.out")); the token that started it may not approve (four eyes)"

# ---- 2. a denial rolls the canary back ----
DROVER_TOKEN=$ALICE "$CLI" deny --reason "error rate" "$RUN1" >"$TMP/deny.out" 2>&1 ||
	fail "deny: $(cat "$TMP/deny.out")"
wait_for 60 dep_state_is "$RUN1" rolled_back || fail "$RUN1 after deny: $(dep_get "$RUN1" '{state,reason}')"
[[ $(dep_get "$RUN1" .reason) == *"denied by alice at canary step 25%: error rate"* ]] ||
	fail "reason: $(dep_get "$RUN1" .reason)"
wait_for 20 eval '[[ $(on_new 1.0.0) == 4 ]]' || fail "after the rollback: $(versions)"
[[ $(dep_get "$RUN1" '.step_approvals[0].denied.actor') == alice ]] || fail "round: $(dep_get "$RUN1" .step_approvals)"
ok "alice denied at 25%: $RUN1 rolled back ($(dep_get "$RUN1" .reason)); $(versions)"

# ---- 3. a second run: restart while it waits, bob approves, 100% ----
code=$(dep_post "$DEV" "$TMP/v2.yaml" "env=production" "$TMP/run2.json")
RUN2=$(jq -r .id "$TMP/run2.json")
[[ $code == 201 ]] || fail "run 2: $code $(cat "$TMP/run2.json")"
wait_for 90 dep_state_is "$RUN2" awaiting_approval || fail "$RUN2: $(dep_get "$RUN2" '{state,reason}')"
wait_for 20 eval '[[ $(on_new 2.0.0) == 1 ]]' || fail "run 2 at 25%: $(versions)"
deadline=$(dep_get "$RUN2" .approval.deadline_ms)
"$CLI" pause "$RUN2" >/dev/null || fail "pause $RUN2"
[[ $(dep_get "$RUN2" .state) == paused && $(dep_get "$RUN2" .approval.step) == 25% ]] ||
	fail "paused while waiting: $(dep_get "$RUN2" '{state, approval}')"
"$CLI" resume "$RUN2" >/dev/null || fail "resume $RUN2"
[[ $(dep_get "$RUN2" .state) == awaiting_approval && $(dep_get "$RUN2" '.step_approvals | length') == 1 &&
	$(dep_get "$RUN2" .approval.deadline_ms) == "$deadline" ]] ||
	fail "resumed: $(dep_get "$RUN2" '{state, step_approvals}')"
ok "paused and resumed while it waits: the same round (deadline kept)"
coord_stop
coord_start
[[ $(dep_get "$RUN2" .state) == awaiting_approval && $(dep_get "$RUN2" .approval.step) == 25% ]] ||
	fail "after a restart: $(dep_get "$RUN2" '{state, reason, approval}')"
sleep 2
[[ $(on_new 2.0.0) == 1 ]] || fail "the restart let the canary go on: $(versions)"
ok "droverd restarted: $RUN2 still waits at 25% ($(versions))"
code=$(dep_decide "$BOB" "$RUN2" approve "metrics fine" "$TMP/bob.json")
[[ $code == 200 ]] || fail "bob approve: $code $(cat "$TMP/bob.json")"
wait_for 90 dep_state_is "$RUN2" succeeded || fail "$RUN2: $(dep_get "$RUN2" '{state,reason}')"
wait_for 20 eval '[[ $(on_new 2.0.0) == 4 ]]' || fail "after approval: $(versions)"
"$CLI" status "$RUN2" >"$TMP/status.out" 2>&1 || true
grep -q "at canary step 25%" "$TMP/status.out" && grep -q "approved by bob" "$TMP/status.out" ||
	fail "drover status: $(cat "$TMP/status.out")"
[[ $(sql "SELECT count(*) FROM audit WHERE actor = 'bob' AND status = 200 AND detail LIKE '%deployment=$RUN2 approve comment=\"metrics fine\"%'") == 1 ]] ||
	fail "bob's approval not audited: $(sql "SELECT actor, status, detail FROM audit WHERE detail LIKE '%approve%'")"
ok "bob approved $RUN2 at 25%: it went on to 100% and succeeded ($(versions)); status and audit say so"

# ---- 4. the timeout rolls back ----
plan "$TMP/v1b.yaml" 1.0.0
code=$(dep_post "$DEV" "$TMP/v1b.yaml" "env=hurry" "$TMP/hurry.json")
HURRY=$(jq -r .id "$TMP/hurry.json")
[[ $code == 201 ]] || fail "hurry: $code $(cat "$TMP/hurry.json")"
wait_for 90 dep_state_is "$HURRY" rolled_back || fail "$HURRY: $(dep_get "$HURRY" '{state,reason}')"
[[ $(dep_get "$HURRY" .reason) == *"not approved within 3s at canary step 25% (approval timeout)"* ]] ||
	fail "timeout reason: $(dep_get "$HURRY" .reason)"
wait_for 20 eval '[[ $(on_new 2.0.0) == 4 ]]' || fail "after the timeout: $(versions)"
ok "hurry (timeout 3s): $HURRY rolled back at 25% ($(dep_get "$HURRY" .reason))"
