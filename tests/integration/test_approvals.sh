#!/usr/bin/env bash
# test_approvals.sh: approvals, allow windows, queue: true and a running
# deployment that reaches a freeze, on the real droverd, two real
# drover-agents and a real registry (docs/environments.md).
#
# staging (host stage-1) has a one-off freeze that opens ~35 s after droverd
# is configured and lasts 12 s: a deployment held in its pre hook when the
# freeze opens pauses (the hook finishes, nothing new starts) and resumes
# when it closes; a second deployment with queue: true waits (queued) and
# starts after; one without queue is refused with 409. production (host
# prod-1) needs two approvals of role approver: the token that started it
# is refused (four eyes), a deployer is refused (role), the same approver
# twice is refused, the wait survives a restart of droverd, the second
# approver starts it; a denial ends one aborted; "hurry" times out; "office"
# only allows deployments inside an allow window (never open): 409.
TEST_NAME=approvals
source "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"

deploy_setup
STAGE_PORT=${SVC_PORT[alpha]}
PROD_PORT=${SVC_PORT[beta]}
HOOK_PORT=$(pick_port "$REG_PORT" "$STAGE_PORT" "$PROD_PORT")
"$(mkimage_berry_bin)" --name webhooks --port "$HOOK_PORT" --listen-addr 127.0.0.1 \
	>"$TMP/webhooks.log" 2>&1 &
PIDS[webhooks]=$!
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
FROM_S=$(($(date +%s) + 35))
UNTIL_S=$((FROM_S + 12))

coord_init
set_opt "$COORD/droverd.yaml" insecure_registry true
set_opt "$COORD/droverd.yaml" allow "http://127.0.0.1:$HOOK_PORT/"
cat >>"$COORD/droverd.yaml" <<EOT
environments:
  production:
    labels: { env: production }
    vars: { PORT: $PROD_PORT, GREETING: prod }
    approval: { approvers: 2, role: approver, timeout: 1h }
  hurry:
    labels: { env: production }
    vars: { PORT: $PROD_PORT, GREETING: hurry }
    approval: { timeout: 3s }
  staging:
    labels: { env: staging }
    vars: { PORT: $STAGE_PORT, GREETING: stage }
    windows:
      - { name: freeze, from: "$(iso $FROM_S)", until: "$(iso $UNTIL_S)", reason: test freeze }
  office:
    labels: { env: staging }
    vars: { PORT: $STAGE_PORT, GREETING: office }
    windows:
      - { name: hours, type: allow, from: "2020-01-01T00:00:00Z", until: "2020-01-02T00:00:00Z" }
EOT
"$DROVERD" --config "$COORD/droverd.yaml" --check >"$TMP/check.out" 2>&1 ||
	fail "droverd --check: $(cat "$TMP/check.out")"
coord_start
deploy_agent stage-1 tier=web env=staging
deploy_agent prod-1 tier=web env=production
ok "droverd with environments production (2 approvals), hurry, staging (freeze), office (allow)"

# plan FILE NAME VERSION PORT [EXTRA...]: one service alpha on tier=web.
plan() {
	local file=$1 name=$2 version=$3 port=$4
	shift 4
	{
		printf 'deployment: %s\nversion: "%s"\n' "$name" "$version"
		for l in "$@"; do printf '%s\n' "$l"; done
		cat <<EOT
defaults:
  driver: exec
  stop_grace: 2s
  health: { http: { port: $port, path: /health }, interval: 200ms, timeout: 1s,
            healthy_threshold: 2, unhealthy_threshold: 2, deadline: 8s }
tiers:
  - name: web
    services:
      - name: alpha
        image: $REG/berrys/berry:1.0.0
        hosts: { labels: { tier: web } }
        command: [/bin/berry-svc, --name, alpha, --port, "{{vars.PORT}}", --listen-addr, 127.0.0.1]
        env: { BERRY_VERSION: "{{vars.GREETING}}-$version" }
EOT
	} >"$file"
}
events_of() { sql "SELECT kind FROM events WHERE deployment_id = '$1' ORDER BY id" | tr '\n' ' '; }
reason_has() { [[ $(dep_get "$1" .reason) == *"$2"* ]]; }

# ---- 1. a running deployment reaches the freeze: pause, resume ----
plan "$TMP/hold.yaml" held 1.0.0 "$STAGE_PORT" "pre:" \
	"  - { name: hold, hosts: [stage-1], timeout: 2m, run: [/bin/sh, -c, 'while [ ! -e $TMP/go ]; do sleep 0.1; done'] }"
[[ $(date +%s) -lt $((FROM_S - 5)) ]] || fail "setup took too long: the freeze is about to open"
code=$(dep_post "$ADMIN_TOKEN" "$TMP/hold.yaml" "env=staging" "$TMP/held.json")
[[ $code == 201 ]] || fail "held: $code $(cat "$TMP/held.json")"
HELD=$(jq -r .id "$TMP/held.json")
wait_for 30 dep_state_is "$HELD" running || fail "$HELD not running: $(dep_get "$HELD" '{state,phase}')"
[[ $(dep_get "$HELD" .phase) == pre ]] || fail "$HELD phase $(dep_get "$HELD" .phase)"
wait_for 60 dep_state_is "$HELD" paused || fail "$HELD not paused at the freeze: $(dep_get "$HELD" '{state,reason}')"
[[ $(date +%s) -ge $FROM_S ]] || fail "paused before the freeze opened"
[[ $(dep_get "$HELD" .window_paused) == *"deployment window freeze"* ]] ||
	fail "window_paused: $(dep_get "$HELD" .window_paused)"
ok "$HELD, held in its pre hook, paused when the freeze opened ($(dep_get "$HELD" .window_paused))"

# While the freeze is open: without queue 409; with queue: true, queued.
plan "$TMP/other.yaml" other 1.0.0 "$STAGE_PORT"
code=$(dep_post "$ADMIN_TOKEN" "$TMP/other.yaml" "env=staging" "$TMP/other-409.json")
[[ $code == 409 && $(jq -r .error.code "$TMP/other-409.json") == window ]] ||
	fail "no queue in the freeze: $code $(cat "$TMP/other-409.json")"
[[ $(jq -r .error.message "$TMP/other-409.json") == *"queue: true"* ]] || fail "409 does not mention queue"
plan "$TMP/queued.yaml" other 1.0.0 "$STAGE_PORT" "queue: true"
code=$(dep_post "$ADMIN_TOKEN" "$TMP/queued.yaml" "env=staging" "$TMP/queued.json")
[[ $code == 201 && $(jq -r .state "$TMP/queued.json") == queued ]] ||
	fail "queue: true in the freeze: $code $(cat "$TMP/queued.json")"
QUEUED=$(jq -r .id "$TMP/queued.json")
ok "in the freeze: without queue 409 window; with queue: true $QUEUED is queued ($(jq -r .reason "$TMP/queued.json"))"

# The hook ends; nothing new starts until the freeze closes.
touch "$TMP/go"
hook_done() { [[ $(dep_get "$HELD" '[.hooks[]?.hosts[]?.state // empty] | join(",")') == *succeeded* ]] ||
	[[ $(events_of "$HELD") == *hook* ]]; }
wait_for 30 hook_done || fail "the hook did not finish: $(dep_get "$HELD" .hooks)"
[[ $(date +%s) -lt $UNTIL_S ]] || fail "the freeze closed before the hook finished: nothing proved"
[[ $(dep_get "$HELD" .state) == paused && -z $(svc_version alpha) ]] ||
	fail "the service started inside the freeze: $(dep_get "$HELD" .state) $(svc_version alpha)"
[[ $(dep_get "$QUEUED" .state) == queued ]] || fail "$QUEUED left the queue inside the freeze"
wait_for 60 dep_state_is "$HELD" succeeded || fail "$HELD after the freeze: $(dep_get "$HELD" '{state,reason}')"
[[ $(date +%s) -ge $UNTIL_S ]] || fail "$HELD finished before the freeze closed"
ev=$(events_of "$HELD")
[[ $ev == *window_paused*window_resumed* ]] || fail "events of $HELD: $ev"
ok "$HELD resumed when the freeze closed and succeeded (events: window_paused ... window_resumed)"
wait_for 60 dep_state_is "$QUEUED" succeeded || fail "$QUEUED: $(dep_get "$QUEUED" '{state,reason}')"
[[ $(svc_version alpha) == stage-1.0.0 ]] || fail "staging /version: $(svc_version alpha)"
held_end=$(dep_get "$HELD" .finished_ms)
q_start=$(sql "SELECT min(at_ms) FROM events WHERE deployment_id = '$QUEUED' AND kind = 'state' AND data LIKE '%prestaging%'")
[[ -n $q_start && $q_start -ge $((UNTIL_S * 1000)) ]] || fail "$QUEUED started at $q_start, before the freeze closed"
ok "the queued $QUEUED started after the freeze (and after $HELD held the service) and succeeded"

# ---- 2. allow windows ----
code=$(dep_post "$ADMIN_TOKEN" "$TMP/other.yaml" "env=office" "$TMP/office.json")
[[ $code == 409 && $(jq -r .error.message "$TMP/office.json") == *"outside its allowed deployment windows (hours"* ]] ||
	fail "office: $code $(cat "$TMP/office.json")"
ok "office (only inside allow window hours): 409 $(jq -r .error.message "$TMP/office.json" | cut -c1-90)"

# ---- 3. approvals ----
tok() { "$DROVERD" token create --db "$COORD/droverd.db" --role "$1" --name "$2" 2>/dev/null; }
DEV=$(tok approver dev) # an approver too: only four eyes stops it
DEV2=$(tok deployer dev2)
ALICE=$(tok approver alice)
BOB=$(tok approver bob)
[[ -n $DEV && -n $ALICE && -n $BOB && -n $DEV2 ]] || fail "tokens"
plan "$TMP/prod.yaml" web 1.0.0 "$PROD_PORT" "notify:" \
	"  - { webhook: \"http://127.0.0.1:$HOOK_PORT/approval\", events: [awaiting_approval] }"
code=$(dep_post "$DEV" "$TMP/prod.yaml" "env=production" "$TMP/prod.json")
[[ $code == 201 && $(jq -r .state "$TMP/prod.json") == awaiting_approval ]] ||
	fail "production: $code $(cat "$TMP/prod.json")"
PROD=$(jq -r .id "$TMP/prod.json")
[[ $(jq -r .approval.required "$TMP/prod.json") == 2 ]] || fail "approval: $(jq -c .approval "$TMP/prod.json")"
approval_posted() { grep -q "POST /approval" "$TMP/webhooks.log"; }
wait_for 20 approval_posted || fail "no awaiting_approval webhook: $(tail -n 5 "$TMP/webhooks.log")"
ok "dev's deployment $PROD to production awaits approval ($(jq -r .reason "$TMP/prod.json")); the webhook said so"

rc=0
DROVER_TOKEN=$DEV "$CLI" approve "$PROD" >"$TMP/self.out" 2>&1 || rc=$?
[[ $rc == 3 ]] && grep -q "four eyes" "$TMP/self.out" || fail "self-approval: exit $rc $(cat "$TMP/self.out")"
code=$(dep_decide "$DEV2" "$PROD" approve "" "$TMP/dev2.json")
[[ $code == 403 && $(jq -r .error.message "$TMP/dev2.json") == *"needs the role approver"* ]] ||
	fail "a deployer approving: $code $(cat "$TMP/dev2.json")"
ok "refused: the token that started it (four eyes, exit 3) and a deployer (403 needs the role approver)"

DROVER_TOKEN=$ALICE "$CLI" approve --comment "looks good" "$PROD" >"$TMP/alice.out" 2>&1 ||
	fail "alice approve: $(cat "$TMP/alice.out")"
grep -q "approved by alice: looks good" "$TMP/alice.out" || fail "alice output: $(cat "$TMP/alice.out")"
[[ $(dep_get "$PROD" .state) == awaiting_approval && -z $(svc_version beta) ]] ||
	fail "one approval of two started it: $(dep_get "$PROD" .state)"
code=$(dep_decide "$ALICE" "$PROD" approve "again" "$TMP/again.json")
[[ $code == 409 && $(jq -r .error.code "$TMP/again.json") == already-approved ]] ||
	fail "alice twice: $code $(cat "$TMP/again.json")"
[[ $(sql "SELECT count(*) FROM instructions WHERE deployment_id = '$PROD'") == 0 ]] ||
	fail "instructions sent before approval"
ok "alice approved (1 of 2: still waiting, nothing sent); alice again: 409 already-approved"

coord_stop
coord_start
[[ $(dep_get "$PROD" .state) == awaiting_approval && $(dep_get "$PROD" '.approval.approvals | length') == 1 ]] ||
	fail "after a restart: $(dep_get "$PROD" '{state, approval}')"
ok "droverd restarted: $PROD still awaits approval with alice's approval kept"

DROVER_TOKEN=$BOB "$CLI" approve --comment "ship it" "$PROD" >"$TMP/bob.out" 2>&1 ||
	fail "bob approve: $(cat "$TMP/bob.out")"
wait_for 60 dep_state_is "$PROD" succeeded || fail "$PROD: $(dep_get "$PROD" '{state,reason}')"
[[ $(svc_version beta) == prod-1.0.0 ]] || fail "production /version: $(svc_version beta)"
DROVER_TOKEN=$DEV "$CLI" status "$PROD" >"$TMP/status.out" 2>&1 || true
grep -q "approved by alice" "$TMP/status.out" && grep -q "approved by bob" "$TMP/status.out" ||
	fail "drover status shows no approvals: $(cat "$TMP/status.out")"
[[ $(sql "SELECT count(*) FROM audit WHERE actor = 'alice' AND status = 200 AND detail LIKE '%deployment=$PROD approve comment=\"looks good\"%'") == 1 ]] ||
	fail "alice's approval not audited: $(sql "SELECT actor, status, detail FROM audit WHERE detail LIKE '%approve%'")"
[[ $(sql "SELECT count(*) FROM audit WHERE actor = 'dev' AND status = 403 AND detail LIKE '%approve%'") -ge 1 ]] ||
	fail "the refused self-approval is not audited"
ok "bob approved: $PROD ran and succeeded; drover status and the audit log say who approved, with comments"

plan "$TMP/prod2.yaml" web 2.0.0 "$PROD_PORT"
code=$(dep_post "$DEV" "$TMP/prod2.yaml" "env=production" "$TMP/prod2.json")
PROD2=$(jq -r .id "$TMP/prod2.json")
DROVER_TOKEN=$ALICE "$CLI" deny --reason "not today" "$PROD2" >"$TMP/deny.out" 2>&1 ||
	fail "deny: $(cat "$TMP/deny.out")"
[[ $(dep_get "$PROD2" .state) == aborted && $(dep_get "$PROD2" .reason) == "denied by alice: not today" ]] ||
	fail "denied: $(dep_get "$PROD2" '{state,reason}')"
[[ $(svc_version beta) == prod-1.0.0 ]] || fail "a denied deployment changed the service"
code=$(dep_decide "$BOB" "$PROD2" approve "" "$TMP/late.json")
[[ $code == 409 ]] || fail "approving a denied deployment: $code"
ok "alice denied $PROD2: aborted, \"denied by alice: not today\"; approving it after: 409"

code=$(dep_post "$DEV" "$TMP/prod2.yaml" "env=hurry" "$TMP/hurry.json")
HURRY=$(jq -r .id "$TMP/hurry.json")
[[ $code == 201 && $(jq -r .state "$TMP/hurry.json") == awaiting_approval ]] || fail "hurry: $code"
wait_for 30 dep_state_is "$HURRY" aborted || fail "$HURRY: $(dep_get "$HURRY" '{state,reason}')"
reason_has "$HURRY" "not approved within 3s" || fail "timeout reason: $(dep_get "$HURRY" .reason)"
ok "hurry (timeout 3s): $HURRY aborted, $(dep_get "$HURRY" .reason)"

# A plan may ask for approval itself (staging asks for none).
plan "$TMP/asks.yaml" asks 2.0.0 "$STAGE_PORT" "approval: { approvers: 1, timeout: 1h }"
code=$(dep_post "$DEV" "$TMP/asks.yaml" "env=staging" "$TMP/asks.json")
ASKS=$(jq -r .id "$TMP/asks.json")
[[ $code == 201 && $(jq -r .state "$TMP/asks.json") == awaiting_approval &&
	$(jq -r .reason "$TMP/asks.json") == "the plan needs 1 approval (role approver): 0 given" ]] ||
	fail "a plan asking for approval: $code $(cat "$TMP/asks.json")"
code=$(dep_decide "$BOB" "$ASKS" approve "fine" "$TMP/asks-ok.json")
[[ $code == 200 ]] || fail "approving $ASKS: $code $(cat "$TMP/asks-ok.json")"
wait_for 60 dep_state_is "$ASKS" succeeded || fail "$ASKS: $(dep_get "$ASKS" '{state,reason}')"
[[ $(svc_version alpha) == stage-2.0.0 ]] || fail "staging /version: $(svc_version alpha)"
ok "a plan with approval: { approvers: 1 } to staging (no approval of its own) waited; bob approved; it ran"
# With its environment's: the stricter of both (production: 2 approvers, approver).
plan "$TMP/stricter.yaml" web 3.0.0 "$PROD_PORT" "approval: { approvers: 1, role: admin, timeout: 30m }"
code=$(dep_post "$DEV" "$TMP/stricter.yaml" "env=production" "$TMP/stricter.json")
STRICT=$(jq -r .id "$TMP/stricter.json")
[[ $code == 201 && $(jq -c '.approval | [.required, .role, .timeout_ms]' "$TMP/stricter.json") == '[2,"admin",1800000]' ]] ||
	fail "plan and environment: $code $(jq -c .approval "$TMP/stricter.json")"
code=$(dep_decide "$BOB" "$STRICT" approve "" "$TMP/strict-bob.json")
[[ $code == 403 ]] || fail "an approver on an approval that asks for admin: $code"
code=$(dep_decide "$ADMIN_TOKEN" "$STRICT" deny "cleanup" "$TMP/strict-deny.json")
[[ $code == 200 && $(dep_get "$STRICT" .state) == aborted ]] || fail "admin deny: $code"
ok "plan (1, admin, 30m) with production (2, approver, 1h): needs 2, role admin, 30m; an approver is refused (403)"

# ---- 4. environments over the API and the CLI ----
curl -sS --max-time 10 -H "Authorization: Bearer $DEV" "$DROVER_ADDR/v1/environments" >"$TMP/envs.json"
[[ $(jq -r '[.environments[].name] | join(",")' "$TMP/envs.json") == production,hurry,staging,office ]] ||
	fail "environments: $(cat "$TMP/envs.json")"
jq -e '.environments[] | select(.name == "production") | .approval.approvers == 2 and .approval.role == "approver"' "$TMP/envs.json" >/dev/null ||
	fail "production approval: $(cat "$TMP/envs.json")"
jq -e '.environments[] | select(.name == "office") | .deployable == false and .blocked_by.why == "outside" and .windows[0].type == "allow"' "$TMP/envs.json" >/dev/null ||
	fail "office: $(cat "$TMP/envs.json")"
jq -e '.environments[] | select(.name == "staging") | .deployable == true and .windows[0].open == false' "$TMP/envs.json" >/dev/null ||
	fail "staging: $(cat "$TMP/envs.json")"
"$CLI" environments >"$TMP/envs.out" || fail "drover environments"
grep -Eq '^office +no +0 +1' "$TMP/envs.out" || fail "drover environments: $(cat "$TMP/envs.out")"
"$CLI" environments office >"$TMP/office.out" || fail "drover environments office"
grep -q "held back by window hours" "$TMP/office.out" || fail "drover environments office: $(cat "$TMP/office.out")"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $DEV" "$DROVER_ADDR/v1/environments/nope")
[[ $code == 404 ]] || fail "unknown environment: $code"
ok "GET /v1/environments and drover environments: approvals, windows, whether a deployment may start now"
