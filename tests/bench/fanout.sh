#!/usr/bin/env bash
# bench: fan-out. N virtual agents (fleetsim) enroll with a real droverd and
# hold long polls; then ROUNDS times one instruction per agent is queued and
# timed until every agent holds it and until every one is acknowledged. The
# same fleet against nullcoord (the link alone: same NNG, same signatures, no
# database) in the same run is the baseline; the ratio is droverd's overhead.
#
# Until the deployment engine is on main, the instructions are queued through
# the admin/debug path POST /v1/agents/{id}/instructions (one request each, 8
# in flight); with the engine, --deploy PLAN times `drover deploy PLAN --wait`.
#
#   fanout.sh N [ROUNDS] [IDLE]   -> $BENCH_OUT/fanout-N.json
# IDLE (a duration, default 0): before the rounds, hold the fleet idle that
# long and sample droverd's CPU (use at least 2 x the 25 s poll timeout).
TEST_NAME=bench_fanout
source "$(dirname "$0")/bench_lib.sh"
N=${1:?usage: fanout.sh N [ROUNDS] [IDLE]}
ROUNDS=${2:-3}
IDLE=${3:-0}
NOFILE=$(nofile_raise)
((NOFILE >= N + 256)) || { echo "SKIPPED: $N agents need ulimit -n >= $((N + 256)), the hard limit is $(ulimit -Hn)" >&2; exit 77; }

coord_init --enroll-token
coord_production_timers
coord_start
"$FLEETSIM" --coordinator "$LINK_URL" --coordinator-key "$COORD/coordinator.pub" \
	--enroll-token-file "$COORD/enroll.token" -n "$N" --idle "$IDLE" \
	--queue-api "$DROVER_ADDR" --admin-token-file "$COORD/admin.token" --rounds "$ROUNDS" \
	--coord-pid "$COORD_PID" --json "$TMP/droverd.json" | tee "$TMP/droverd.out" ||
	fail "fleetsim against droverd failed"
coord_stop

NULL_PORT=$(pick_port "$LINK_PORT" "$API_PORT")
"$NULLCOORD" --listen "tcp://127.0.0.1:$NULL_PORT" --key "$COORD/coordinator.key" 2>>"$TMP/null.log" &
PIDS[nullcoord]=$!
null_up() { (exec 3<>"/dev/tcp/127.0.0.1/$NULL_PORT") 2>/dev/null; }
wait_for 10 null_up || fail "nullcoord did not listen"
"$FLEETSIM" --coordinator "tcp://127.0.0.1:$NULL_PORT" --coordinator-key "$COORD/coordinator.pub" \
	-n "$N" --rounds "$ROUNDS" --trigger "kill -USR1 ${PIDS[nullcoord]}" \
	--coord-pid "${PIDS[nullcoord]}" --json "$TMP/null.json" | tee "$TMP/null.out" ||
	fail "fleetsim against nullcoord failed"

bench_json "fanout-$N" "$(jq -n --slurpfile d "$TMP/droverd.json" --slurpfile z "$TMP/null.json" \
	--arg path "admin-api" --argjson nofile "$NOFILE" '
	def med(f): [.[] | f] | sort | .[(length - 1) / 2 | floor];
	{agents: $d[0].agents, trigger: $path, nofile: $nofile,
	 droverd: $d[0], nullcoord: $z[0],
	 median: {
	   droverd: ($d[0].rounds | {first_all_ms: med(.first_instruction_all_ms), acked_all_ms: med(.acked_all_ms),
	                             latency_p50_ms: med(.latency_p50_ms), latency_p99_ms: med(.latency_p99_ms),
	                             queue_all_ms: med(.queue_all_ms), coordinator_cpu_ms: med(.coordinator_cpu_ms)}),
	   nullcoord: ($z[0].rounds | {first_all_ms: med(.first_instruction_all_ms), acked_all_ms: med(.acked_all_ms),
	                               latency_p50_ms: med(.latency_p50_ms), latency_p99_ms: med(.latency_p99_ms),
	                               coordinator_cpu_ms: med(.coordinator_cpu_ms)})}}
	| .ratio = {first_all: (.median.droverd.first_all_ms / .median.nullcoord.first_all_ms),
	            acked_all: (.median.droverd.acked_all_ms / .median.nullcoord.acked_all_ms),
	            coordinator_cpu: (.median.droverd.coordinator_cpu_ms / .median.nullcoord.coordinator_cpu_ms)}')"
jq -c '{agents, median, ratio}' "$BENCH_OUT/fanout-$N.json"
ok "fan-out to $N agents measured against droverd and nullcoord"
