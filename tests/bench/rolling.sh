#!/usr/bin/env bash
# bench: a three-tier rolling deployment over N simulated hosts with
# zero-time work: the coordinator's own overhead. fleetsim plays N agents;
# each host runs one of the runbook's eight services (label svc=NAME, the
# services cycled over the hosts); the plan (tests/bench/plans/tiers.yaml.in)
# rolls core, supporting, ui in order, 25 % of each service's hosts at a
# time. Timed: `drover deploy --wait` from the request to the end, plus the
# fan-out of its first instructions (prestage) to every host.
#
#   rolling.sh N [PULL RESTART HEALTH]   (simulated durations, default 0)
#   -> $BENCH_OUT/rolling-N.json
TEST_NAME=bench_rolling
source "$(dirname "$0")/bench_lib.sh"
N=${1:?usage: rolling.sh N [PULL RESTART HEALTH]}
PULL=${2:-0} RESTART=${3:-0} HEALTH=${4:-0}
NOFILE=$(nofile_raise)
((NOFILE >= N + 256)) || { echo "SKIPPED: $N agents need ulimit -n >= $((N + 256))" >&2; exit 77; }
SERVICES=project-coordinator,agent-orchestrator,model-orchestration,planning-system,tool-integration,service-integration,api-gateway,web-dashboard

coord_init --enroll-token
coord_production_timers
coord_start
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
	-H 'Content-Type: application/json' --data '{}' "$DROVER_ADDR/v1/deployments")
[[ $code != 404 ]] || { echo "SKIPPED: droverd has no deployment engine yet (POST /v1/deployments is 404)" >&2; exit 77; }
digest=sha256:$(printf 'fleetsim' | sha256sum | cut -d' ' -f1)
sed -e "s|@DIGEST@|$digest|g" "$BENCH_DIR/plans/tiers.yaml.in" >"$TMP/plan.yaml"
"$CLI" plan check "$TMP/plan.yaml" >/dev/null || fail "plan: $("$CLI" plan check "$TMP/plan.yaml" 2>&1)"

"$FLEETSIM" --coordinator "$LINK_URL" --coordinator-key "$COORD/coordinator.pub" \
	--enroll-token-file "$COORD/enroll.token" -n "$N" --label "svc=$SERVICES" \
	--pull "${PULL}ms" --restart "${RESTART}ms" --health "${HEALTH}ms" --rounds 1 \
	--trigger "$CLI deploy $TMP/plan.yaml --wait >$TMP/deploy.log 2>&1" --round-timeout 1800s \
	--coord-pid "$COORD_PID" --json "$TMP/fleetsim.json" | tee "$TMP/fleetsim.out" ||
	fail "the deployment did not finish: $(tail -n 20 "$TMP/deploy.log")"
jq -e '.rounds[0].command_exit == 0' "$TMP/fleetsim.json" >/dev/null || fail "drover deploy failed: $(tail -n 20 "$TMP/deploy.log")"
instr=$(jq '.totals.instructions' "$TMP/fleetsim.json")
bench_json "rolling-$N" "$(jq -n --slurpfile f "$TMP/fleetsim.json" --argjson instr "$instr" '
	{hosts: $f[0].agents, services: 8, tiers: 3, batch: "25%", instructions: $instr,
	 deploy_s: ($f[0].rounds[0].command_ms / 1000),
	 prestage_fanout_ms: $f[0].rounds[0].first_instruction_all_ms,
	 coordinator_cpu_s: ($f[0].rounds[0].coordinator_cpu_ms / 1000),
	 coordinator_cpu_ms_per_instruction: ($f[0].rounds[0].coordinator_cpu_ms / $instr),
	 note: "zero-time simulated work", fleetsim: $f[0]}')"
ok "three tiers over $N hosts: $(jq -r '.deploy_s' "$BENCH_OUT/rolling-$N.json") s, $instr instructions"
