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
#   -> $BENCH_OUT/rolling-N.json (BENCH_STORE=pg: rolling-pg-N.json, on PostgreSQL)
# ROLLING_WAIT=db: `drover deploy` without --wait, then wait for the
# deployment's final state in droverd's database (sqlite3, every second, at
# most an hour): for fleets where the API answers too slowly for --wait.
# ROLLING_PERF=FILE: perf record droverd meanwhile (perf report -i FILE).
# ROLLING_TIMELINE=PREFIX: keep the run's timeline from droverd's store (either
# engine): PREFIX-instructions.txt (step_id|issued_at_ms|sent_ms|acked_ms|agent)
# and PREFIX-events.txt (kind|agent|at_ms|step_id|result, in id order; the
# last two for reports); tests/bench/timeline.py PREFIX shows where the time
# went (the waves, and the rolling batches' critical path).
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

trigger="$CLI deploy $TMP/plan.yaml --wait >$TMP/deploy.log 2>&1"
[[ ${ROLLING_WAIT:-cli} == db && -n $BENCH_SUFFIX ]] && fail "ROLLING_WAIT=db reads the SQLite file: not with BENCH_STORE=pg"
if [[ ${ROLLING_WAIT:-cli} == db ]]; then
	final="select count(*) from deployments where state in ('succeeded', 'failed', 'rolled_back', 'aborted')"
	trigger="$CLI deploy $TMP/plan.yaml >$TMP/deploy.log 2>&1 && for i in \$(seq 3600); do
		[ \"\$(sqlite3 -cmd '.timeout 5000' $COORD/droverd.db \"$final\")\" = 1 ] && exit 0; sleep 1; done; exit 1"
fi
# ROLLING_PERF=FILE: record droverd's CPU profile (perf) while the fleet runs.
if [[ -n ${ROLLING_PERF:-} ]]; then
	perf record -q ${ROLLING_PERF_OPTS:--g -F 499} -p "$COORD_PID" -o "$ROLLING_PERF" 2>>"$TMP/perf.log" &
	PIDS[perf]=$!
fi
"$FLEETSIM" --coordinator "$LINK_URL" --coordinator-key "$COORD/coordinator.pub" \
	--enroll-token-file "$COORD/enroll.token" -n "$N" --label "svc=$SERVICES" \
	--pull "${PULL}ms" --restart "${RESTART}ms" --health "${HEALTH}ms" --rounds 1 \
	--trigger "$trigger" --round-timeout 3600s \
	--coord-pid "$COORD_PID" --json "$TMP/fleetsim.json" | tee "$TMP/fleetsim.out" ||
	fail "the deployment did not finish: $(tail -n 20 "$TMP/deploy.log")"
jq -e '.rounds[0].command_exit == 0' "$TMP/fleetsim.json" >/dev/null || fail "drover deploy failed: $(tail -n 20 "$TMP/deploy.log")"
instr=$(jq '.totals.instructions' "$TMP/fleetsim.json")
[[ $(sql "select state from deployments order by n desc limit 1") == succeeded ]] ||
	fail "the deployment did not succeed: $(sql "select state, phase, reason from deployments")"
db_s=$(sql "select (finished_ms - created_ms) / 1000.0 from deployments order by n desc limit 1")
# The engine's saves by what they carried (droverd builds that count them),
# and how long one scrape of /metrics takes with N agents (it computes drift).
scrape_s=$(curl -s --max-time 30 -o "$TMP/metrics.txt" -w '%{time_total}' \
	-H "Authorization: Bearer $ADMIN_TOKEN" "$DROVER_ADDR/metrics")
saves=$(sed -n 's/^drover_deploy_saves_total{carries="\([a-z]*\)"} \([0-9]*\)$/\1 \2/p' "$TMP/metrics.txt" |
	jq -Rn '[inputs | split(" ") | {(.[0]): (.[1] | tonumber)}] | add // {}')
bench_json "rolling$BENCH_SUFFIX-$N" "$(jq -n --slurpfile f "$TMP/fleetsim.json" --argjson instr "$instr" \
	--argjson db_s "$db_s" --arg wait "${ROLLING_WAIT:-cli}" --argjson saves "$saves" --argjson scrape_s "$scrape_s" '
	{hosts: $f[0].agents, services: 8, tiers: 3, batch: "25%", instructions: $instr,
	 deploy_s: ($f[0].rounds[0].command_ms / 1000), created_to_finished_s: $db_s,
	 wait: $wait, engine_saves: $saves, metrics_scrape_s: $scrape_s,
	 prestage_fanout_ms: $f[0].rounds[0].first_instruction_all_ms,
	 coordinator_cpu_s: ($f[0].rounds[0].coordinator_cpu_ms / 1000),
	 coordinator_cpu_ms_per_instruction: ($f[0].rounds[0].coordinator_cpu_ms / $instr),
	 note: "zero-time simulated work", fleetsim: $f[0]}')"
[[ -n ${ROLLING_TIMELINE:-} ]] && bench_timeline "$ROLLING_TIMELINE"
ok "three tiers over $N hosts: $(jq -r '.deploy_s' "$BENCH_OUT/rolling$BENCH_SUFFIX-$N.json") s, $instr instructions"
