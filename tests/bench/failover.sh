#!/usr/bin/env bash
# bench: HA failover on PostgreSQL. Two droverd nodes made by `droverd init
# --postgres` on a real PostgreSQL (tests/lib/pg.sh, fsync on), default lease
# (6 s) unless FAILOVER_LEASE says otherwise, N simulated agents (fleetsim).
# The nodes share the link and API addresses (only the leader binds them), so
# the agents need one URL, and the second node's directory is a copy of the
# first's (the same signing key: fleetsim trusts one key).
#
# Each round starts a three-tier rolling deployment over the fleet (each step
# takes HEALTH ms of simulated health), and once it is under way stops the
# leader, alternately with kill -9 and with SIGTERM (graceful handover).
# Measured from the signal: until the other node logs that it leads, and
# until it sends its first instruction (the earliest instructions.sent_ms
# after the signal, in PostgreSQL: a resumed step re-sent or a new one; in
# between, the agents redial with their backoff: fleetsim's 100 ms doubling
# up to --reconnect-max, FAILOVER_RECONNECT_MAX, default 5 s). The
# deployment must then succeed; the stopped node is started again and
# follows. Figures, not assertions: nothing here fails on a slow machine.
#
#   failover.sh [N] [ROUNDS] [HEALTH_MS]   (default 40 agents, 4 rounds, 1500 ms)
#   -> $BENCH_OUT/failover.json
TEST_NAME=bench_failover
export BENCH_STORE=pg
source "$(dirname "$0")/bench_lib.sh"
N=${1:-40}
ROUNDS=${2:-4}
HEALTH=${3:-1500}
LEASE=${FAILOVER_LEASE:-6s}
SERVICES=project-coordinator,agent-orchestrator,model-orchestration,planning-system,tool-integration,service-integration,api-gateway,web-dashboard

COORD_INIT_ARGS=(--postgres "$PG_CONNINFO" --node a)
coord_init --enroll-token
coord_production_timers
set_opt "$COORD/droverd.yaml" lease "$LEASE"
B=$TMP/b
cp -a "$COORD" "$B"
sed -i -E 's/^(  node: )"?a"?$/\1b/' "$B/droverd.yaml"
grep -qE '^  node: "?b"?$' "$B/droverd.yaml" || fail "cannot name node b"
declare -A DIR=([a]=$COORD [b]=$B)

node_start() { # NAME
	"$DROVERD" --config "${DIR[$1]}/droverd.yaml" >>"$TMP/node-$1.log" 2>&1 &
	PIDS[$1]=$!
}
leads_n() { grep -c 'msg="this node leads the group"' "$TMP/node-$1.log" 2>/dev/null || true; }
listens_n() { grep -c 'mod=link msg="listening"' "$TMP/node-$1.log" 2>/dev/null || true; }
follows() { grep -q 'msg="following: waiting for the leader lease"' "$TMP/node-$1.log" 2>/dev/null; }
now_ms() { date +%s%3N; }

node_start a
wait_for 60 healthy || fail "node a does not serve: $(tail -n 5 "$TMP/node-a.log")"
node_start b
wait_for 30 follows b || fail "node b does not follow"
leader=a follower=b

digest() { printf 'sha256:%s' "$(printf 'fleetsim-%s' "$1" | sha256sum | cut -d' ' -f1)"; }
"$FLEETSIM" --coordinator "$LINK_URL" --coordinator-key "$COORD/coordinator.pub" \
	--enroll-token-file "$COORD/enroll.token" -n "$N" --label "svc=$SERVICES" \
	--health "${HEALTH}ms" --reconnect-max "${FAILOVER_RECONNECT_MAX:-5s}" --rounds 1 --round-timeout 3600s \
	--trigger "while [ ! -e $TMP/done ]; do sleep 0.2; done" >"$TMP/fleetsim.log" 2>&1 &
PIDS[fleetsim]=$!
connected() { [[ $("$CLI" agents --json 2>/dev/null | jq '[.[] | select(.state == "connected")] | length') == "$N" ]]; }
wait_for 120 connected || fail "the fleet did not connect: $(tail -n 5 "$TMP/fleetsim.log")"

results=()
for ((r = 1; r <= ROUNDS; r++)); do
	sig=KILL
	((r % 2 == 0)) && sig=TERM
	sed -e "s|@DIGEST@|$(digest "$r")|g" -e "s|^version: .*|version: \"2.4.$r\"|" \
		"$BENCH_DIR/plans/tiers.yaml.in" >"$TMP/plan-$r.yaml"
	"$CLI" deploy --json "$TMP/plan-$r.yaml" >"$TMP/deploy-$r.json" 2>&1 || fail "deploy round $r: $(cat "$TMP/deploy-$r.json")"
	dep=$(jq -r .id "$TMP/deploy-$r.json")
	# under way: the first tier's steps are out (a third of the deployment)
	acked() { [[ $(pg_sql "SELECT count(*) FROM instructions WHERE deployment_id = '$dep' AND state = 'acked'") -ge $((N / 4)) ]]; }
	wait_for 60 acked || fail "round $r: $dep does not progress"
	before=$(leads_n "$follower")
	listen_before=$(listens_n "$follower")
	t0=$(now_ms)
	kill -"$sig" "${PIDS[$leader]}"
	[[ $sig == KILL ]] && { wait "${PIDS[$leader]}" 2>/dev/null || true; }
	new_leader() { [[ $(leads_n "$follower") -gt $before ]]; }
	wait_for 60 new_leader || fail "round $r: node $follower did not lead after $sig of $leader"
	t_lead=$(($(now_ms) - t0))
	link_open() { [[ $(listens_n "$follower") -gt $listen_before ]]; }
	wait_for 60 link_open || fail "round $r: node $follower does not listen"
	t_listen=$(($(now_ms) - t0))
	first_sent() { [[ $(pg_sql "SELECT count(*) FROM instructions WHERE sent_ms > $t0") -gt 0 ]]; }
	wait_for 60 first_sent || fail "round $r: no instruction sent after the failover"
	t_first=$(($(pg_sql "SELECT min(sent_ms) FROM instructions WHERE sent_ms > $t0") - t0))
	done_ok() { [[ $(pg_sql "SELECT state FROM deployments WHERE id = '$dep'") == succeeded ]]; }
	wait_for 300 done_ok || fail "round $r: $dep after the failover: $(pg_sql "SELECT state, reason FROM deployments WHERE id = '$dep'")"
	echo "round $r: $sig of node $leader: node $follower leads after $t_lead ms, its link listens after $t_listen ms, it sends its first instruction after $t_first ms; $dep succeeded"
	results+=("{\"round\": $r, \"signal\": \"$sig\", \"lead_ms\": $t_lead, \"listen_ms\": $t_listen, \"first_instruction_ms\": $t_first}")
	_stop_pid "${PIDS[$leader]}" # already gone, or still stopping
	node_start "$leader"
	tmp=$leader leader=$follower follower=$tmp
done
touch "$TMP/done"
wait "${PIDS[fleetsim]}" 2>/dev/null || true
unset 'PIDS[fleetsim]'

bench_json failover "$(printf '%s\n' "${results[@]}" | jq -s --arg lease "$LEASE" --argjson n "$N" \
	--argjson health "$HEALTH" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '
	def stats(f): [.[] | f] | {min: min, max: max, median: (sort | .[(length - 1) / 2 | floor])};
	{agents: $n, lease: $lease, step_health_ms: $health, load_end: $load, rounds: .,
	 kill: ([.[] | select(.signal == "KILL")] | {lead_ms: stats(.lead_ms), listen_ms: stats(.listen_ms), first_instruction_ms: stats(.first_instruction_ms)}),
	 term: ([.[] | select(.signal == "TERM")] | {lead_ms: stats(.lead_ms), listen_ms: stats(.listen_ms), first_instruction_ms: stats(.first_instruction_ms)})}')"
jq -c '{lease, kill, term}' "$BENCH_OUT/failover.json"
ok "failover measured over $ROUNDS rounds (lease $LEASE)"
