#!/usr/bin/env bash
# bench: fan-out. N virtual agents (fleetsim) enroll with a real droverd and
# hold long polls; then ROUNDS times one instruction per agent is queued and
# timed until every agent holds it and until every one is acknowledged. The
# same fleet against nullcoord (the link alone: same NNG, same signatures and
# verifications, no database, no deployment engine) in the same run is the
# baseline; the ratio is droverd's overhead. nullcoord sends each agent as
# many instructions per round as droverd did (a deployment sends PRESTAGE,
# then START: two), each after the previous one was reported done, and its
# round ends when the last is reported (nullcoord_steps in the JSON).
#
# The instructions come from `drover deploy PLAN --wait` (tests/bench/plans/
# fanout.yaml.in: one service on every host, all at once: the prestage goes
# to every agent the moment the deployment starts); timed from the command's
# start. With FANOUT_VIA=api (or a droverd without the deployment engine)
# they are queued through the admin/debug path POST /v1/agents/{id}/
# instructions instead, one request per agent, 8 in flight.
#
#   fanout.sh N [ROUNDS] [IDLE]   -> $BENCH_OUT/fanout-N.json (FANOUT_VIA=api:
#                                    fanout-api-N.json; BENCH_STORE=pg: fanout-pg-N.json)
# FANOUT_WAIT=0: `drover deploy` without --wait (one round only): the round
# ends when every agent has its first instruction and acknowledged it, not
# when the deployment ends (for fleets where the deployment itself is long).
# droverd then goes on sending the STARTs while fleetsim closes its sockets;
# NNG 1.5.2 can hang in such a close, so fleetsim bounds its teardown (10 s)
# after printing its figures and may say it exits without it.
# FANOUT_PERF=FILE records droverd with perf while the fleet runs.
# FANOUT_TIMELINE=PREFIX keeps every round's instruction and event times
# (as ROLLING_TIMELINE in rolling.sh; tests/bench/timeline.py PREFIX).
# IDLE (a duration, default 0): before the rounds, hold the fleet idle that
# long and sample droverd's CPU (use at least 2 x the 25 s poll timeout).
TEST_NAME=bench_fanout
source "$(dirname "$0")/bench_lib.sh"
N=${1:?usage: fanout.sh N [ROUNDS] [IDLE]}
ROUNDS=${2:-3}
IDLE=${3:-0}
NOFILE=$(nofile_raise)
((NOFILE >= N + 256)) || { echo "SKIPPED: $N agents need ulimit -n >= $((N + 256)), the hard limit is $(ulimit -Hn)" >&2; exit 77; }

VIA=${FANOUT_VIA:-deploy}
coord_init --enroll-token
coord_production_timers
coord_start
if [[ $VIA == deploy ]]; then
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
		-H 'Content-Type: application/json' --data '{}' "$DROVER_ADDR/v1/deployments")
	[[ $code != 404 ]] || { echo "no deployment engine in droverd: queueing through the API" >&2; VIA=api; }
fi
if [[ $VIA == deploy ]]; then
	# each round deploys a new version: plan-1.yaml, plan-2.yaml, ...
	digest=sha256:$(printf 'fleetsim' | sha256sum | cut -d' ' -f1)
	for ((r = 1; r <= ROUNDS; r++)); do
		sed -e "s|@DIGEST@|$digest|g" -e "s|@ROUND@|$r|g" "$BENCH_DIR/plans/fanout.yaml.in" >"$TMP/plan-$r.yaml"
	done
	echo 0 >"$TMP/round"
	wait_flag=--wait
	[[ ${FANOUT_WAIT:-1} == 0 ]] && { wait_flag=; ROUNDS=1; }
	trigger=(--label role=sim --trigger "r=\$((\$(cat $TMP/round) + 1)); echo \$r >$TMP/round; $CLI deploy $TMP/plan-\$r.yaml $wait_flag >>$TMP/deploy.log 2>&1")
else
	trigger=(--queue-api "$DROVER_ADDR" --admin-token-file "$COORD/admin.token")
fi
# FANOUT_PERF=FILE: record droverd's CPU profile (perf, call graphs) while
# the fleet runs; `perf report -i FILE --no-children` shows where it goes.
if [[ -n ${FANOUT_PERF:-} ]]; then
	perf record -q ${FANOUT_PERF_OPTS:--g -F 499} -p "$COORD_PID" -o "$FANOUT_PERF" 2>>"$TMP/perf.log" &
	PIDS[perf]=$!
fi
"$FLEETSIM" --coordinator "$LINK_URL" --coordinator-key "$COORD/coordinator.pub" \
	--enroll-token-file "$COORD/enroll.token" -n "$N" --idle "$IDLE" "${trigger[@]}" \
	--rounds "$ROUNDS" --round-timeout 1800s \
	--coord-pid "$COORD_PID" --json "$TMP/droverd.json" | tee "$TMP/droverd.out" ||
	fail "fleetsim against droverd failed: $(tail -n 5 "$TMP/deploy.log" 2>/dev/null)"
if [[ -n ${PIDS[perf]:-} ]]; then
	kill -INT "${PIDS[perf]}" 2>/dev/null
	wait "${PIDS[perf]}" 2>/dev/null || true # perf ends with 130 on SIGINT
	unset 'PIDS[perf]'
fi
[[ -n ${FANOUT_TIMELINE:-} ]] && bench_timeline "$FANOUT_TIMELINE"
coord_stop

# The baseline does the same link work per agent as droverd's round: as
# many instructions, each sent when the previous one is reported done (a
# deployment's PRESTAGE, then START), and the round ends when every agent
# reported its last (as `drover deploy --wait` returns when the deployment
# ended). STEPS comes from what the agents counted against droverd.
STEPS=$(jq -r --argjson n "$N" --argjson r "$ROUNDS" \
	'(.totals.instructions / ($n * $r) + 0.5) | floor | if . < 1 then 1 elif . > 16 then 16 else . end' \
	"$TMP/droverd.json") || fail "cannot count droverd's instructions per agent"
echo "nullcoord: $STEPS instruction(s) per agent per round, as droverd sent"
NULL_PORT=$(pick_port "$LINK_PORT" "$API_PORT")
echo 0 >"$TMP/null-done"
"$NULLCOORD" --listen "tcp://127.0.0.1:$NULL_PORT" --key "$COORD/coordinator.key" \
	--steps "$STEPS" --done-file "$TMP/null-done" 2>>"$TMP/null.log" &
PIDS[nullcoord]=$!
null_up() { (exec 3<>"/dev/tcp/127.0.0.1/$NULL_PORT") 2>/dev/null; }
wait_for 10 null_up || fail "nullcoord did not listen"
echo 0 >"$TMP/null-round"
null_trigger="r=\$((\$(cat $TMP/null-round) + 1)); echo \$r >$TMP/null-round; kill -USR1 ${PIDS[nullcoord]}"
null_trigger+="; until [ \"\$(cat $TMP/null-done)\" = \$r ]; do sleep 0.01; done"
"$FLEETSIM" --coordinator "tcp://127.0.0.1:$NULL_PORT" --coordinator-key "$COORD/coordinator.pub" \
	-n "$N" --rounds "$ROUNDS" --trigger "$null_trigger" \
	--coord-pid "${PIDS[nullcoord]}" --json "$TMP/null.json" | tee "$TMP/null.out" ||
	fail "fleetsim against nullcoord failed"

NAME=fanout$BENCH_SUFFIX-$N
[[ $VIA == api ]] && NAME=fanout-api$BENCH_SUFFIX-$N
bench_json "$NAME" "$(jq -n --slurpfile d "$TMP/droverd.json" --slurpfile z "$TMP/null.json" \
	--arg path "$VIA" --argjson nofile "$NOFILE" --argjson steps "$STEPS" '
	def med(f): [.[] | f] | sort | .[(length - 1) / 2 | floor];
	{agents: $d[0].agents, trigger: $path, nofile: $nofile, nullcoord_steps: $steps,
	 droverd: $d[0], nullcoord: $z[0],
	 median: {
	   droverd: ($d[0].rounds | {first_all_ms: med(.first_instruction_all_ms), acked_all_ms: med(.acked_all_ms),
	                             latency_p50_ms: med(.latency_p50_ms), latency_p99_ms: med(.latency_p99_ms),
	                             queue_all_ms: med(.queue_all_ms), deploy_ms: med(.command_ms),
	                             coordinator_cpu_ms: med(.coordinator_cpu_ms)}),
	   nullcoord: ($z[0].rounds | {first_all_ms: med(.first_instruction_all_ms), acked_all_ms: med(.acked_all_ms),
	                               latency_p50_ms: med(.latency_p50_ms), latency_p99_ms: med(.latency_p99_ms),
	                               coordinator_cpu_ms: med(.coordinator_cpu_ms)})}}
	| def ratio(a; b): if b > 0 then a / b else null end; # tiny fleets: 0 ms of CPU
	.ratio = {first_all: ratio(.median.droverd.first_all_ms; .median.nullcoord.first_all_ms),
	          acked_all: ratio(.median.droverd.acked_all_ms; .median.nullcoord.acked_all_ms),
	          coordinator_cpu: ratio(.median.droverd.coordinator_cpu_ms; .median.nullcoord.coordinator_cpu_ms)}')" ||
	fail "cannot summarize the fan-out"
jq -c '{agents, trigger, median, ratio}' "$BENCH_OUT/$NAME.json"
ok "fan-out to $N agents measured against droverd and nullcoord"
