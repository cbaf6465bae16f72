#!/usr/bin/env bash
# cli_deploy.sh: the drover CLI's deployment commands against a real
# droverd, five agents, a registry and the reference images (CTest
# e2e_cli_deploy): deploy with every plan error as FILE:LINE (exit 2);
# deploy --wait with plain lines when piped (exit 0) and the redrawn view on
# a terminal; status and history tables; pause/resume/promote/abort/rollback
# and their refusals (exit 2); a deployment whose health fails rolls back
# (exit 1); an unreachable coordinator or a bad token (exit 3).
#
#   sudo bash tests/e2e/cli_deploy.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"
# shellcheck source=ui/plans.sh
source "$E2E_DIR/ui/plans.sh"

ops_require curl jq script
ops_up

OUT=$E2E_RUN/cli
mkdir -p "$OUT"
# run NAME ARGS...: drover ARGS in the control namespace; stdout, stderr and
# the exit status in $OUT/NAME.{out,err,rc}; prints the status.
run() {
	local name=$1 rc=0
	shift
	drover_cli "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" || rc=$?
	echo "$rc" >"$OUT/$name.rc"
	echo "$rc"
}
show() { echo "--- $1.out"; cat "$OUT/$1.out"; echo "--- $1.err"; cat "$OUT/$1.err"; }
expect_rc() { # NAME WANT
	local got
	got=$(cat "$OUT/$1.rc")
	[[ $got == "$2" ]] || { show "$1" >&2; fail "$1: exit status $got, want $2"; }
}
dep_state() { drover_cli status --json "$1" | jq -r .state; }
state_is() { [[ $(dep_state "$1") == "$2" ]]; }

# ---- invalid plans: every error with its line, exit 2
ops_plan "$OUT/v1.yaml" v1 0 1s
sed -e 's|^        image: .*project-coordinator.*$|        image: ""|' \
	-e 's|interval: 250ms|interval: 1x|' "$OUT/v1.yaml" >"$OUT/bad.yaml"
run bad deploy "$OUT/bad.yaml" >/dev/null
expect_rc bad 2
n=$(grep -cE "^$OUT/bad.yaml:[0-9]+: [][a-z_.0-9]+: " "$OUT/bad.err" || true)
[[ $n -ge 2 ]] || { show bad >&2; fail "want at least 2 errors as FILE:LINE: field: message, got $n"; }
ok "an invalid plan: $n errors as FILE:LINE: field: message, exit 2"
sed 's|\[core-1, core-2, core-3\]|[core-1, nosuch-9]|' "$OUT/v1.yaml" >"$OUT/hosts.yaml"
run hosts deploy "$OUT/hosts.yaml" >/dev/null
expect_rc hosts 2
grep -q "hosts.yaml:[0-9]*: " "$OUT/hosts.err" || { show hosts >&2; fail "unknown host: no FILE:LINE"; }
ok "a plan naming an unknown host: refused with its line, exit 2"

# ---- deploy --wait, piped: plain lines, exit 0
run v1 deploy --wait "$OUT/v1.yaml" >/dev/null
expect_rc v1 0
for h in "${OPS_CORE_HOSTS[@]}"; do
	grep -qE "^core/project-coordinator $h succeeded .*-> v1 \([0-9.]+(ms|s)\)$" "$OUT/v1.out" ||
		{ show v1 >&2; fail "no plain line for $h"; }
done
tail -n 1 "$OUT/v1.out" | grep -qE "^[^ ]+ berrys-ops v1 succeeded in " || { show v1 >&2; fail "last line"; }
if grep -q $'\033' "$OUT/v1.out"; then fail "escape sequences in piped output"; fi
ok "deploy --wait piped: one line per host change, a final line, exit 0"
V1=$(drover_cli history --json --limit 1 | jq -r '.[0].id')

# ---- deploy --dry-run: what would change, resolved against the live fleet;
# nothing is created or touched. Exit 0 nothing would change, 1 something
# would, 2 the plan is refused.
run dry_same deploy --dry-run "$OUT/v1.yaml" >/dev/null
expect_rc dry_same 0
grep -q "^dry run of berrys-ops v1: 0 changes, 5 hosts unchanged" "$OUT/dry_same.out" ||
	{ show dry_same >&2; fail "dry run of the running release: headline"; }
ops_plan "$OUT/v2.yaml" v2 0 1s
events_before=$(drover_api GET "/v1/events?follow=0&tail=1000" | grep -c '^id:' || true)
run dry_v2 deploy --dry-run "$OUT/v2.yaml" >/dev/null
expect_rc dry_v2 1
for h in "${OPS_CORE_HOSTS[@]}"; do
	grep -qE "^      $h  v1 -> v2$" "$OUT/dry_v2.out" || { show dry_v2 >&2; fail "dry run: no v1 -> v2 for $h"; }
done
grep -qE "^      batch 1/3: core-1$" "$OUT/dry_v2.out" && grep -qE "^      batch 3/3: core-3$" "$OUT/dry_v2.out" ||
	{ show dry_v2 >&2; fail "dry run: rolling batches"; }
grep -qE "^      step 1/2 50%: ui-1; traffic|^      step 1/2 50%: ui-1; then pause" "$OUT/dry_v2.out" ||
	{ show dry_v2 >&2; fail "dry run: canary step 1"; }
grep -q "health gate: GET :8080/health 200-299" "$OUT/dry_v2.out" || { show dry_v2 >&2; fail "dry run: health gate"; }
run dry_json deploy --dry-run --json "$OUT/v2.yaml" >/dev/null
expect_rc dry_json 1
jq -e '.dry_run and .changes == 5 and .unchanged == 0 and
	([.tiers[].services[].digest | startswith("sha256:")] | all) and
	([.tiers[].services[].hosts[] | select(.change == "update" and .from_version == "v1")] | length) == 5' \
	"$OUT/dry_json.out" >/dev/null || { show dry_json >&2; fail "dry run --json"; }
[[ $(drover_cli history --json --limit 1 | jq -r '.[0].id') == "$V1" ]] || fail "a dry run created a deployment"
events_after=$(drover_api GET "/v1/events?follow=0&tail=1000" | grep -c '^id:' || true)
[[ $events_after == "$events_before" ]] || fail "a dry run wrote events ($events_before -> $events_after)"
for h in "${OPS_CORE_HOSTS[@]}"; do
	[[ $(in_ns "$h" curl -fsS --max-time 5 http://127.0.0.1:8080/version) == v1 ]] || fail "$h changed by a dry run"
done
run dry_bad deploy --dry-run "$OUT/bad.yaml" >/dev/null
expect_rc dry_bad 2
grep -qE "^$OUT/bad.yaml:[0-9]+: " "$OUT/dry_bad.err" || { show dry_bad >&2; fail "dry run of a bad plan: no FILE:LINE"; }
ok "deploy --dry-run: unchanged exit 0; v1 -> v2 per host, batches, canary steps, health gate, exit 1; --json; nothing created; bad plan exit 2"

# ---- a service that turns unhealthy after its deployment is a health-check
# failure on /metrics (the agent's monitor reports the transition)
metrics() { in_ns control curl -fsS --max-time 10 -H "Authorization: Bearer $(cat "$DROVER_TOKEN_FILE")" "$DROVER_ADDR/metrics"; }
metric() { metrics | awk -v s="$1" '$1 == s {print $2}'; }
metric_at_least() { local v; v=$(metric "$1"); [[ -n $v ]] && awk -v v="$v" -v m="$2" 'BEGIN { exit !(v >= m) }'; }
in_ns core-2 curl -fsS --max-time 5 -o /dev/null http://127.0.0.1:8080/fail || fail "berry-svc /fail"
wait_for "a health failure on /metrics" 30 metric_at_least \
	'drover_health_check_failures_total{service="project-coordinator"}' 1 || fail "no health failure counted"
in_ns core-2 curl -fsS --max-time 5 -o /dev/null http://127.0.0.1:8080/recover || fail "berry-svc /recover"
ok "a service turned unhealthy is counted in drover_health_check_failures_total"

# ---- status and history
run status status >/dev/null
expect_rc status 0
grep -q "^state       succeeded (phase " "$OUT/status.out" || { show status >&2; fail "status header"; }
grep -qE "^core +project-coordinator +core-2 +succeeded +[^ ]+ +v1 " "$OUT/status.out" ||
	{ show status >&2; fail "status host row"; }
grep -qE "^ui +api-gateway +canary step 2/2 weight 100%|^ui +api-gateway +[a-z]+ +canary" "$OUT/status.out" ||
	{ show status >&2; fail "status service row"; }
run hist history >/dev/null
expect_rc hist 0
grep -qE "^$V1 +berrys-ops +v1 +succeeded " "$OUT/hist.out" || { show hist >&2; fail "history row"; }
[[ $(drover_cli status --json "$V1" | jq -r '.tiers | length') == 2 ]] || fail "status --json"
ok "status shows tiers, services and hosts; history lists $V1"

# ---- a terminal gets the redrawn view (script gives drover a pty)
ops_plan "$OUT/v2.yaml" v2 0 1s
in_ns control env DROVER_ADDR="$DROVER_ADDR" DROVER_TOKEN_FILE="$DROVER_TOKEN_FILE" \
	script -qefc "stty cols 160; $(e2e_bin drover) deploy --wait $OUT/v2.yaml" "$OUT/tty.out" >/dev/null ||
	fail "deploy --wait on a terminal: exit $?"
grep -q $'\033\[[0-9]*A' "$OUT/tty.out" || fail "no redraw (cursor up) on the terminal"
grep -q '\[####################\]  3/3 hosts' "$OUT/tty.out" || fail "no full progress bar on the terminal"
grep -q "tier core" "$OUT/tty.out" || fail "no tier line on the terminal"
ok "deploy --wait on a terminal: progress bars redrawn in place, exit 0"

# ---- operator verbs on a slow deployment with a manual canary
ops_plan "$OUT/v1-slow.yaml" v1 1500 manual
DEP=$(drover_cli deploy --json "$OUT/v1-slow.yaml" | jq -r .id)
run busy deploy "$OUT/v1-slow.yaml" >/dev/null
expect_rc busy 2
run resume_early resume "$DEP" >/dev/null
expect_rc resume_early 2
run pause pause "$DEP" >/dev/null
expect_rc pause 0
grep -q "^$DEP: paused" "$OUT/pause.out" || { show pause >&2; fail "pause output"; }
state_is "$DEP" paused || fail "not paused"
run resume resume "$DEP" >/dev/null
expect_rc resume 0
wait_for "$DEP awaiting promotion" 90 state_is "$DEP" awaiting_promotion || fail "no canary pause"
run promote promote "$DEP" >/dev/null
expect_rc promote 0
wait_for "$DEP succeeded" 90 state_is "$DEP" succeeded || fail "not succeeded after promote"
# The canary's last host started by the promote has its start time (it was 0).
nostart=$(drover_cli status --json "$DEP" |
	jq -r '.tiers[].services[] | .name as $s | .hosts[] | select(.state == "succeeded" and .started_ms == 0) | "\($s)@\(.id)"')
[[ -z $nostart ]] || fail "hosts succeeded without started_ms: $nostart"
run late_pause pause "$DEP" >/dev/null
expect_rc late_pause 2
ok "pause, resume, promote (exit 0); resume of a running and pause of a finished deployment refused (exit 2)"

ops_plan "$OUT/v2-slow.yaml" v2 1500 manual
DEP=$(drover_cli deploy --json "$OUT/v2-slow.yaml" | jq -r .id)
wait_for "$DEP awaiting promotion" 90 state_is "$DEP" awaiting_promotion || fail "no canary pause"
run rollback rollback "$DEP" >/dev/null
expect_rc rollback 0
wait_for "$DEP rolled back" 90 state_is "$DEP" rolled_back || fail "not rolled back"
rows=$(drover_cli status --json "$DEP" | jq -r '.tiers[].services[].hosts[] | select(.state == "succeeded")')
[[ -z $rows ]] || fail "hosts left on v2 after a rollback: $rows"
ok "rollback of a canary awaiting promotion: rolled_back, no host left on v2"

DEP=$(drover_cli deploy --json "$OUT/v2-slow.yaml" | jq -r .id)
run abort abort "$DEP" >/dev/null
expect_rc abort 0
wait_for "$DEP aborted" 30 state_is "$DEP" aborted || fail "not aborted"
ok "abort stops the deployment where it stands"

# ---- a broken version rolls back: exit 1
ops_plan "$OUT/v3.yaml" v3 0 1s
run v3 deploy --wait "$OUT/v3.yaml" >/dev/null
expect_rc v3 1
tail -n 1 "$OUT/v3.out" | grep -q " rolled_back in " || { show v3 >&2; fail "v3 final line"; }
grep -qE "^core/project-coordinator core-[0-9] failed " "$OUT/v3.out" || { show v3 >&2; fail "no failed host line"; }
ok "an unhealthy version: rolled back, exit 1"

# ---- /metrics after all of that: valid, and it tells the story
if command -v promtool >/dev/null; then
	metrics >"$OUT/metrics.txt" || fail "GET /metrics"
	promtool check metrics <"$OUT/metrics.txt" || fail "promtool rejects droverd's /metrics"
	ok "promtool accepts /metrics after deployments"
else
	echo "e2e: NOTE: promtool missing (Debian prometheus): /metrics syntax not checked here" >&2
fi
for want in 'drover_agents{state="connected"} 5' \
	'drover_image_pulls_total{result="succeeded"} 5' \
	'drover_step_duration_seconds_count{kind="start",result="failed"} 1' \
	'drover_step_duration_seconds_count{kind="rollback",result="succeeded"} 1' \
	'drover_rollbacks_total 2' \
	'drover_deployments{state="succeeded"} 3' \
	'drover_deployments{state="rolled_back"} 2' \
	'drover_deployments{state="aborted"} 1' \
	'drover_link_instructions_acked_total 20' \
	'drover_image_pull_bytes_total{source="registry"} 1000'; do
	metric_at_least "${want% *}" "${want##* }" ||
		fail "/metrics: want ${want% *} >= ${want##* }, got '$(metric "${want% *}")'"
done
ok "/metrics: agents and deployments by state, pulls and bytes, step durations by kind and result, rollbacks, instructions acked"

# ---- cannot reach, cannot authenticate: exit 3
rc=0
in_ns control env DROVER_ADDR="http://$(addr_of control):1" "$(e2e_bin drover)" status >/dev/null 2>&1 || rc=$?
[[ $rc == 3 ]] || fail "unreachable: exit $rc, want 3"
rc=0
in_ns control env -u DROVER_TOKEN_FILE DROVER_ADDR="$DROVER_ADDR" DROVER_TOKEN=drv_bogus "$(e2e_bin drover)" history >/dev/null 2>&1 || rc=$?
[[ $rc == 3 ]] || fail "bad token: exit $rc, want 3"
ok "unreachable coordinator and bad token: exit 3"
