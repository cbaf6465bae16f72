#!/usr/bin/env bash
# test_ha_move.sh: after kill -9 of the leader, every agent reaches the new
# leader promptly with drover-agent's DEFAULT link timers (reconnect 200 ms
# doubling to 30 s, request timeout 10 s) and the droverd default poll timeout
# (25 s), also the agent in the middle of a long step, whose result is then
# delivered to the new leader once and never run twice.
#
# The follower b is started only after the agents: until then their dialers
# to it are refused, and NNG's pause between attempts grows towards
# reconnect_max (the state of every agent after a follower was restarted,
# which tests/bench/failover.sh hit: one agent found the new leader 24 s
# after a graceful stop, and a deployment rolled back). Before the fix an
# agent whose session node died waited for that pause or its request timeout
# (10 s) before it tried b; now it redials the nodes without a connection at
# once (agent/uplink.c, redial_idle) and asks again every NEXT_WAIT_MAX_MS
# while b still answers NOT_LEADER.
#
# Then a second failover soon after: a restarted as a follower and b stopped
# gracefully, while the first search's redial pause for a is still running:
# the agents must reach a as promptly (the search redials a at once).
#
# The bound each agent must meet is derived from the agent's constants, not
# a blind timeout: its welcome from b at most NEXT_WAIT_MAX_MS plus 25 %
# jitter (1.25 s: the longest pause between two Hellos while the follower
# answers NOT_LEADER) after b has resumed its deployments, plus MOVE_SLACK_MS
# for the Hello's round trip on a loaded machine. Both instants come from the
# logs' timestamps (b's `leading: deployments resumed`, the agent's welcome).
TEST_NAME=ha_move
source "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"
# shellcheck source=ha_lib.sh
source "$REPO_DIR/tests/integration/ha_lib.sh"

# the agent's longest pause between two Hellos, read from its source
NEXT_WAIT_MAX_MS=$(sed -n 's/^#define NEXT_WAIT_MAX_MS \([0-9]*\).*/\1/p' "$REPO_DIR/agent/uplink.c")
[[ $NEXT_WAIT_MAX_MS =~ ^[0-9]+$ ]] || fail "cannot read NEXT_WAIT_MAX_MS from agent/uplink.c"
MOVE_SLACK_MS=${MOVE_SLACK_MS:-1500}
BOUND_MS=$((NEXT_WAIT_MAX_MS * 5 / 4 + MOVE_SLACK_MS))
AGENTS=(core-1 core-2 edge-1)

ha_setup a b
for n in a b; do # droverd's default link timers
	set_opt "${N_DIR[$n]}/droverd.yaml" poll_timeout 25s
	set_opt "${N_DIR[$n]}/droverd.yaml" liveness_timeout 50s
done
node_start a
wait_for 60 leads a || fail "node a does not lead: $(tail -n 5 "$TMP/coord-a.log")"

# Agents list b (not started) first, then a; drover-agent's default timers.
HA_AGENT_DEFAULT_TIMERS=1
deploy_agent core-1 tier=core
deploy_agent core-2 tier=core
deploy_agent edge-1 tier=edge
grep -q "^  request_timeout: 10s$" "$TMP/core-1/agent.yaml" && grep -q "^  reconnect_max: 30s$" "$TMP/core-1/agent.yaml" ||
	fail "the agents do not run the default link timers: $(grep -A8 '^link:' "$TMP/core-1/agent.yaml")"
wait_for 30 all_with a || fail "the agents are not with a: $(cat "$TMP"/core-1/state/link-status.json)"
plan_rolling "$TMP/v1.yaml" 1.0.0
"$CLI" deploy --wait "$TMP/v1.yaml" >"$TMP/deploy-v1.out" 2>&1 ||
	fail "deploy 1.0.0: $(tail -n 20 "$TMP/deploy-v1.out")"
ok "node a leads; three agents with default link timers deployed 1.0.0 while b was down"

node_start b
wait_for 60 follows b || fail "node b does not follow: $(tail -n 5 "$TMP/coord-b.log")"
wait_for 30 follower_of b a || fail "node b does not serve as a's follower: $(health b)"
ok "node b started and follows; the agents' dialers to it were refused until now"

# A long step: each service takes 5 s to start; the deadline is generous so
# that the deployment's outcome does not hang on the timing measured here.
plan_rolling "$TMP/v2.yaml" 2.0.0 5000
sed -i 's/deadline: 6s/deadline: 60s/' "$TMP/v2.yaml"
pid_v1=$(svc_pid core-1 alpha) || fail "core-1 has no pid file for alpha 1.0.0"
"$CLI" deploy --json "$TMP/v2.yaml" >"$TMP/v2.json" || fail "deploy 2.0.0"
DEP=$(jq -r .id "$TMP/v2.json")
STEP=$DEP:start:0:0 # alpha on core-1
step_running() { grep -q "msg=\"step started\" step=$STEP " "$TMP/core-1.log"; }
wait_for 60 step_running || fail "core-1 never started $STEP: $(dep_get "$DEP" '{state,reason}')"
# The step stops 1.0.0 before it starts 2.0.0: between the two no pid file
# exists, so wait until the file names the process this step started.
pid_alpha=
new_pid() { pid_alpha=$(svc_pid core-1 alpha) && [[ -n $pid_alpha && $pid_alpha != "$pid_v1" ]]; }
wait_for 30 new_pid || fail "core-1 started no new alpha process for $STEP (pid file: ${pid_alpha:-none})"
declare -A log_at=()
for g in "${AGENTS[@]}"; do log_at[$g]=$(wc -l <"$TMP/$g.log"); done
t0=$(date +%s%3N)
node_kill a KILL
ok "kill -9 of the leader a while core-1 runs $STEP"

wait_for 30 leads b || fail "node b did not lead after the kill: $(tail -n 5 "$TMP/coord-b.log")"
ts_ms() { date -d "$1" +%s%3N; }
log_ts() { sed -n 's/^ts=\([^ ]*\) .*/\1/p' | head -n 1; }
t_resumed=$(ts_ms "$(grep 'msg="leading: deployments resumed' "$TMP/coord-b.log" | log_ts)")
welcomed() { tail -n +"$((log_at[$1] + 1))" "$TMP/$1.log" | grep -q 'msg="welcome" status=2'; }
for g in "${AGENTS[@]}"; do
	# bounded: the assertion below is the test; this only stops the wait
	wait_for 60 welcomed "$g" || fail "$g never reached b: $(tail -n +"$((log_at[$g] + 1))" "$TMP/$g.log" | grep uplink | head -n 12)"
	t_g=$(ts_ms "$(tail -n +"$((log_at[$g] + 1))" "$TMP/$g.log" | grep 'msg="welcome" status=2' | log_ts)")
	late=$((t_g - t_resumed))
	echo "$g: with b $((t_g - t0)) ms after the kill, $late ms after b resumed (bound $BOUND_MS ms)"
	((late <= BOUND_MS)) ||
		fail "$g reached b $late ms after it resumed (bound $BOUND_MS ms): $(tail -n +"$((log_at[$g] + 1))" "$TMP/$g.log" | grep uplink | head -n 12)"
done
first_sent() { [[ $(pg_sql "SELECT count(*) FROM instructions WHERE sent_ms > $t0") -gt 0 ]]; }
wait_for 30 first_sent || fail "node b sent no instruction after the failover"
t_first=$(($(pg_sql "SELECT min(sent_ms) FROM instructions WHERE sent_ms > $t0") - t0))
ok "node b resumed $((t_resumed - t0)) ms after the kill (lease ${LEASE_S} s); every agent with it within $BOUND_MS ms of that; its first instruction $t_first ms after the kill"

# A second failover soon after the first: a comes back as a follower, then b
# stops gracefully and hands the lead to a. While a was down the agents'
# dialers to it were refused (NNG's pause grew) and their search for b left
# a's redial pause (2, 4, 8 s ...) in the future; the new search must redial
# a at once (agent/uplink.c, redial_idle after a welcome), not wait for
# either pause (tests/bench/failover.sh saw an agent reach the new leader
# 10 s late this way). Same bound as above, from a's resume.
follows_a=$(logs a 'msg="following: waiting for the leader lease"')
leads_a=$(logs a 'msg="leading: deployments resumed')
node_start a
wait_for 60 follows a "$((follows_a + 1))" || fail "node a does not follow after its restart: $(tail -n 5 "$TMP/coord-a.log")"
wait_for 30 follower_of a b || fail "node a does not serve as b's follower: $(health a)"
for g in "${AGENTS[@]}"; do log_at[$g]=$(wc -l <"$TMP/$g.log"); done
t1=$(date +%s%3N)
node_kill b TERM
wait_for 30 leads a "$((leads_a + 1))" || fail "node a did not lead after b stopped: $(tail -n 5 "$TMP/coord-a.log")"
t_resumed=$(ts_ms "$(grep 'msg="leading: deployments resumed' "$TMP/coord-a.log" | tail -n 1 | log_ts)")
for g in "${AGENTS[@]}"; do
	wait_for 60 welcomed "$g" || fail "$g never reached a: $(tail -n +"$((log_at[$g] + 1))" "$TMP/$g.log" | grep uplink | head -n 12)"
	t_g=$(ts_ms "$(tail -n +"$((log_at[$g] + 1))" "$TMP/$g.log" | grep 'msg="welcome" status=2' | log_ts)")
	late=$((t_g - t_resumed))
	echo "$g: with a $((t_g - t1)) ms after b stopped, $late ms after a resumed (bound $BOUND_MS ms)"
	# The cause, not only its time: an agent that found no node connected
	# (a's dialer still in NNG's pause) must have redialed a before it
	# waited; without the redial it waits for that pause or the old one.
	search=$(tail -n +"$((log_at[$g] + 1))" "$TMP/$g.log" | sed '/msg="welcome" status=2/q' | grep 'mod=uplink')
	if grep -q 'msg="no coordinator node is connected: waiting for one"' <<<"$search"; then
		sed '/msg="no coordinator node is connected: waiting for one"/q' <<<"$search" |
			grep -q "msg=\"redialing\" .* url=${N_LINK[a]}\$" ||
			fail "$g waited for a connection without redialing a (${N_LINK[a]}) first: $search"
	fi
	((late <= BOUND_MS)) ||
		fail "$g reached a $late ms after it resumed (bound $BOUND_MS ms): $(tail -n +"$((log_at[$g] + 1))" "$TMP/$g.log" | grep uplink | head -n 12)"
done
ok "a restarted, b stopped gracefully $((t1 - t0)) ms after the kill: every agent with a within $BOUND_MS ms of its resume"

# The long step: run once, its result delivered to b, no report taken twice.
succeeded_heard() { cat "$TMP"/coord-a.log "$TMP"/coord-b.log | grep -q "msg=\"report\" agent=core-1 report_seq=[0-9]* step=$STEP result=succeeded"; }
wait_for 60 succeeded_heard || fail "no node heard $STEP succeed: $(grep "step=$STEP" "$TMP"/coord-*.log | tail -n 5)"
wait_for 90 dep_state_is "$DEP" succeeded || fail "$DEP after the failover: $(dep_get "$DEP" '{state,reason}')"
all_on 2.0.0 || fail "after the failover not every service runs 2.0.0"
[[ $(grep -c "msg=\"step started\" step=$STEP " "$TMP/core-1.log") == 1 ]] ||
	fail "core-1 started $STEP more than once: $(grep "step=$STEP" "$TMP/core-1.log")"
[[ $(svc_pid core-1 alpha) == "$pid_alpha" ]] || fail "alpha was started again after the failover"
twice=$(cat "$TMP"/coord-a.log "$TMP"/coord-b.log | sed -n 's/.*msg="report" agent=core-1 report_seq=\([0-9]*\) .*/\1/p' | sort | uniq -d)
[[ -z $twice ]] || fail "core-1's reports taken twice: report_seq $twice"
ok "$STEP ran once on core-1 across both failovers; its result taken once; $DEP succeeded, every host on 2.0.0"
