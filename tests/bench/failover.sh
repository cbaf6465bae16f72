#!/usr/bin/env bash
# bench: HA failover on PostgreSQL. Two droverd nodes made by `droverd init
# --postgres` on a real PostgreSQL (tests/lib/pg.sh, fsync on), each with its
# own key, link and API address and droverd's default link timers (poll
# timeout 25 s); the default lease (6 s) unless FAILOVER_LEASE says otherwise;
# three real drover-agents that list both nodes' URLs and keys
# (tests/integration/deploy_lib.sh: a real registry and the berry images),
# with drover-agent's DEFAULT link timers (reconnect 200 ms doubling to 30 s,
# request timeout 10 s) unless FAILOVER_RECONNECT_MAX says otherwise.
#
# Each round starts a two-tier rolling deployment (each service start takes
# 2.5 s) and, once its first host is starting, stops the leader, alternately with
# kill -9 and with SIGTERM (graceful handover). Measured from the signal:
# until the other node logs that it leads (the lease), until it has resumed
# the deployments and leads the link and the API, until every agent's session
# is with it (the agents' logs), and until it sends its first instruction
# (the earliest instructions.sent_ms after the signal, in PostgreSQL: a
# resumed step re-sent or a new one). The outcome of the deployment is
# recorded (it should succeed); the stopped node is started again and
# follows, and the next round deploys the other version. Figures, not
# assertions: nothing here fails on a slow machine.
#
#   failover.sh [ROUNDS]   (default 4)   -> $BENCH_OUT/failover.json
#
# Before and after in one invocation: FAILOVER_BEFORE=DIR (a directory with
# the droverd, drover-agent and drover binaries of the other build) runs the
# same rounds with those first (-> $BENCH_OUT/before/failover.json), then with
# this build, and prints both.
if [[ -n ${FAILOVER_BEFORE:-} ]]; then
	out=${BENCH_OUT:-${DROVER_BUILD:?}/bench} before=$FAILOVER_BEFORE
	for b in droverd drover-agent drover; do
		[[ -x $before/$b ]] || { echo "FAILOVER_BEFORE: no $b in $before" >&2; exit 2; }
	done
	FAILOVER_BEFORE= BENCH_OUT=$out/before DROVERD=$before/droverd \
		DROVER_AGENT=$before/drover-agent DROVER_CLI=$before/drover \
		bash "${BASH_SOURCE[0]}" "$@" || exit
	FAILOVER_BEFORE= BENCH_OUT=$out bash "${BASH_SOURCE[0]}" "$@" || exit
	for f in "$out/before/failover.json" "$out/failover.json"; do
		echo "$f:"
		jq -r '.rounds[] | "  round \(.round) \(.signal): leads \(.lead_ms) ms, resumed \(.resumed_ms) ms, agents \(.agents_ms) ms, first instruction \(.first_instruction_ms) ms, \(.outcome)"' "$f"
	done
	exit 0
fi
TEST_NAME=bench_failover
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$BENCH_DIR/../integration/deploy_lib.sh"
# shellcheck source=../lib/pg.sh
source "$REPO_DIR/tests/lib/pg.sh"
BENCH_OUT=${BENCH_OUT:-$DROVER_BUILD/bench}
mkdir -p "$BENCH_OUT"
ROUNDS=${1:-4}
LEASE=${FAILOVER_LEASE:-6s}
RECONNECT_MAX=${FAILOVER_RECONNECT_MAX:-30s}

pg_trap _deploy_cleanup
PG_FSYNC=on pg_start "$TMP/pg" || fail "cannot start PostgreSQL"
deploy_setup

declare -A DIR LINK API
ports=("$REG_PORT" "${SVC_PORT[@]}")
for n in a b; do
	DIR[$n]=$TMP/node-$n
	LINK[$n]=$(pick_port "${ports[@]}")
	ports+=("${LINK[$n]}")
	API[$n]=$(pick_port "${ports[@]}")
	ports+=("${API[$n]}")
	"$DROVERD" init --dir "${DIR[$n]}" --postgres "$PG_CONNINFO" --node "$n" \
		--listen "tcp://127.0.0.1:${LINK[$n]}" --api "127.0.0.1:${API[$n]}" >"$TMP/init-$n.log" 2>&1 ||
		fail "droverd init node $n: $(cat "$TMP/init-$n.log")"
	set_opt "${DIR[$n]}/droverd.yaml" insecure_registry true
	set_opt "${DIR[$n]}/droverd.yaml" lease "$LEASE"
	set_opt "${DIR[$n]}/droverd.yaml" poll_timeout 25s
done
node_start() {
	"$DROVERD" --config "${DIR[$1]}/droverd.yaml" >>"$TMP/node-$1.log" 2>&1 &
	PIDS[node-$1]=$!
}
count() { grep -c "$2" "$TMP/node-$1.log" 2>/dev/null || true; }
LEADS='msg="this node leads the group"'
RESUMED='msg="leading: deployments resumed'
now_ms() { date +%s%3N; }
export DROVER_ADDR=http://127.0.0.1:${API[a]},http://127.0.0.1:${API[b]}
export DROVER_TOKEN_FILE=${DIR[a]}/admin.token
ADMIN_TOKEN=$(cat "${DIR[a]}/admin.token")
COORD=${DIR[a]}
LINK_URL=tcp://127.0.0.1:${LINK[a]}
node_start a
a_leads() { [[ $(count a "$RESUMED") -ge 1 ]]; }
wait_for 60 a_leads || fail "node a does not lead: $(tail -n 5 "$TMP/node-a.log")"
node_start b
for spec in core-1:core core-2:core edge-1:edge; do
	name=${spec%%:*}
	agent_init "$name" --label "tier=${spec#*:}" --coordinator "tcp://127.0.0.1:${LINK[b]}" \
		--coordinator-key "${DIR[b]}/coordinator.pub"
	set_opt "$TMP/$name/agent.yaml" insecure_registry true
	set_opt "$TMP/$name/agent.yaml" reconnect_min 200ms
	set_opt "$TMP/$name/agent.yaml" reconnect_max "$RECONNECT_MAX"
	set_opt "$TMP/$name/agent.yaml" request_timeout 10s
	AGENT_NAMES+=("$name")
	agent_start "$name"
	wait_for 30 is_state "$name" pending || fail "agent $name not pending"
	"$CLI" agents accept "$name" >/dev/null || fail "accept $name"
	wait_for 30 is_state "$name" connected || fail "agent $name not connected"
done
dep_state() { pg_sql "SELECT state FROM deployments WHERE id = '$1'"; }
plan_rolling "$TMP/v0.yaml" 1.0.0
"$CLI" deploy --wait "$TMP/v0.yaml" >"$TMP/deploy-0.out" 2>&1 || fail "deploy 1.0.0: $(tail -n 20 "$TMP/deploy-0.out")"

leader=a follower=b results=()
ts_ms() { date -d "$1" +%s%3N; }
# every_agent_with: the latest of the agents' first welcomes after their log
# lines log_at (ms since the epoch); fails while one has none
every_agent_with() {
	local g t latest=0 at
	for g in "${AGENT_NAMES[@]}"; do
		at=${log_at[$g]}
		t=$(tail -n +"$((at + 1))" "$TMP/$g.log" | grep -m 1 'msg="welcome" status=2' | sed -n 's/^ts=\([^ ]*\) .*/\1/p')
		[[ -n $t ]] || return 1
		t=$(ts_ms "$t")
		((t > latest)) && latest=$t
	done
	echo "$latest"
}
for ((r = 1; r <= ROUNDS; r++)); do
	sig=KILL
	((r % 2 == 0)) && sig=TERM
	version=2.0.0
	[[ $(svc_version alpha) == 2.0.0 ]] && version=1.0.0
	plan_rolling "$TMP/v$r.yaml" "$version" 2500
	"$CLI" deploy --json "$TMP/v$r.yaml" >"$TMP/deploy-$r.json" 2>&1 || fail "deploy round $r: $(cat "$TMP/deploy-$r.json")"
	dep=$(jq -r .id "$TMP/deploy-$r.json")
	# under way: the first start is acknowledged (a host is starting its
	# service); the other core host and the edge tier are still to come
	started() { [[ $(pg_sql "SELECT count(*) FROM instructions WHERE deployment_id = '$dep' AND step_id LIKE '%:start:%' AND state = 'acked'") -ge 1 ]]; }
	wait_for 60 started || fail "round $r: $dep never started a host: $(dep_state "$dep")"
	leads0=$(count "$follower" "$LEADS") resumed0=$(count "$follower" "$RESUMED")
	declare -A log_at=()
	for g in "${AGENT_NAMES[@]}"; do log_at[$g]=$(wc -l <"$TMP/$g.log"); done
	t0=$(now_ms)
	kill -"$sig" "${PIDS[node-$leader]}"
	[[ $sig == KILL ]] && { wait "${PIDS[node-$leader]}" 2>/dev/null || true; }
	new_leader() { [[ $(count "$follower" "$LEADS") -gt $leads0 ]]; }
	wait_for 60 new_leader || fail "round $r: node $follower did not lead after $sig of $leader"
	t_lead=$(($(now_ms) - t0))
	resumed() { [[ $(count "$follower" "$RESUMED") -gt $resumed0 ]]; }
	wait_for 60 resumed || fail "round $r: node $follower did not resume"
	t_resumed=$(($(now_ms) - t0))
	agents_with() { every_agent_with >/dev/null; }
	t_agents=-1
	wait_for 60 agents_with && t_agents=$(($(every_agent_with) - t0))
	first_sent() { [[ $(pg_sql "SELECT count(*) FROM instructions WHERE sent_ms > $t0") -gt 0 ]]; }
	t_first=-1
	wait_for 60 first_sent && t_first=$(($(pg_sql "SELECT min(sent_ms) FROM instructions WHERE sent_ms > $t0") - t0))
	ended() { [[ $(dep_state "$dep") =~ ^(succeeded|failed|rolled_back|aborted)$ ]]; }
	wait_for 180 ended || fail "round $r: $dep after the failover: $(dep_state "$dep")"
	outcome=$(dep_state "$dep")
	[[ $outcome != succeeded ]] || all_on "$version" || fail "round $r: not every service runs $version"
	echo "round $r: $sig of node $leader: node $follower leads after $t_lead ms, has resumed after $t_resumed ms, every agent with it after $t_agents ms, first instruction after $t_first ms; $dep $outcome"
	results+=("{\"round\": $r, \"signal\": \"$sig\", \"lead_ms\": $t_lead, \"resumed_ms\": $t_resumed, \"agents_ms\": $t_agents, \"first_instruction_ms\": $t_first, \"outcome\": \"$outcome\"}")
	_stop_pid "${PIDS[node-$leader]}" # gone already, or still stopping
	node_start "$leader"
	tmp=$leader leader=$follower follower=$tmp
done

bench_json() { printf '%s\n' "$2" >"$BENCH_OUT/$1.json"; }
bench_json failover "$(printf '%s\n' "${results[@]}" | jq -s --arg lease "$LEASE" \
	--arg reconnect "$RECONNECT_MAX" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '
	def stats(f): [.[] | f] | {min: min, max: max, median: (sort | .[(length - 1) / 2 | floor])};
	def of(s): [.[] | select(.signal == s)] | {lead_ms: stats(.lead_ms), resumed_ms: stats(.resumed_ms),
	                                            agents_ms: stats(.agents_ms),
	                                            first_instruction_ms: stats(.first_instruction_ms),
	                                            outcomes: [.[].outcome]};
	{agents: 3, lease: $lease, agent_reconnect_max: $reconnect, load_end: $load, rounds: .,
	 kill: of("KILL"), term: of("TERM")}')"
jq -c '{lease, agent_reconnect_max, kill, term}' "$BENCH_OUT/failover.json"
ok "failover measured over $ROUNDS rounds (lease $LEASE)"
