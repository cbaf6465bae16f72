#!/usr/bin/env bash
# test_ha_failover.sh: an HA group of droverd nodes on a real PostgreSQL
# (tests/lib/pg.sh: initdb in the test's temp dir as an unprivileged user,
# unix socket only), three real agents and a real registry. Every node has
# its own signing key, its own link and API addresses and announces its API
# URL (ha.url); every agent lists every node's link URL and every node's key,
# and the CLI gets every node's API address (DROVER_ADDR=a,b,c).
#
#  0. The followers serve while they wait for the lease: the API (reads from
#     the shared store, changes answered 307 to the leader's URL taken from
#     the lease row, /healthz role follower, /v1/leader 503) and the link
#     (NOT_LEADER to a Hello; the agents, which list a follower first, end
#     up with the leader).
#  1. kill -9 of the leader a in the middle of a rolling deployment: b takes
#     the lease within its time, resumes the deployment from its last saved
#     state, and it ends as without the failover (succeeded, every host on
#     the new version, finished hosts untouched, no step queued twice); the
#     agents moved to b by themselves; the CLI, whose first address is dead,
#     keeps working.
#  2. SIGSTOP of the leader b past its lease: c leads (a new epoch). SIGCONT:
#     b finds its lease gone, stops and rejoins the group as a follower (same
#     process id) that serves again as one; nothing of its lost term is in
#     the lease row.
#  3. SIGTERM of the leader c hands the lease over at once (NOTIFY).
#  4. PostgreSQL restarted in the middle of a deployment: the nodes
#     reconnect and the deployment finishes (never stuck).
TEST_NAME=ha_failover
source "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"
# shellcheck source=ha_lib.sh
source "$REPO_DIR/tests/integration/ha_lib.sh"
ha_setup a b c
ok "PostgreSQL running in $TMP/pg (unix socket); nodes a, b, c initialized with keys of their own"

# 0. a leads; b follows and serves as a follower.
node_start a
wait_for 60 leads a || fail "node a does not lead: $(tail -n 5 "$TMP/coord-a.log")"
wait_for 10 role_is a leader || fail "node a /healthz: $(health a)"
node_start b
wait_for 30 follows b || fail "node b does not follow: $(tail -n 5 "$TMP/coord-b.log")"
wait_for 30 follower_of b a || fail "node b does not serve as a's follower: $(health b)"
[[ $(code "${N_API[a]}/v1/leader") == 200 && $(code "${N_API[b]}/v1/leader") == 503 ]] ||
	fail "/v1/leader: a $(code "${N_API[a]}/v1/leader") b $(code "${N_API[b]}/v1/leader")"
ok "node a leads (epoch 1); node b follows and serves: /healthz names a's URL, /v1/leader 503"

deploy_agent core-1 tier=core
deploy_agent core-2 tier=core
deploy_agent edge-1 tier=edge
wait_for 10 all_with a || fail "the agents' sessions are not with a: $(cat "$TMP"/core-1/state/link-status.json)"
# Whether b hears the agents' Hellos is a race: an agent dials every node at
# once and leaves the node it waits on as soon as another one's connection
# is up first (uplink.c pipe_event), which is a's when b is slow to answer
# the connection (beside CPU hogs all three agents went straight to a once).
# So b's NOT_LEADER is asked for directly: a Hello on b's link.
probe=$("$PROBE" claim --url "${N_LINK[b]}" --agent-id probe-b 2>&1) ||
	fail "linkprobe claim on node b: $probe"
[[ $probe == "claim probe-b reject 14" ]] ||
	fail "node b's link did not answer a Hello NOT_LEADER (14): $probe"
b_not_leader() { [[ $(jq -r '.rejected.not_leader' "${N_DIR[b]}/link-stats.json") -ge 1 ]]; }
wait_for 10 b_not_leader || fail "node b's link-stats count no NOT_LEADER"
ok "three agents (b listed first) are with a through the address list; b's link answers NOT_LEADER"

hdrs=$(curl -sS -D - -o /dev/null --max-time 5 -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
	"${N_API[b]}/v1/deployments/x/pause")
grep -q "^HTTP/1.1 307" <<<"$hdrs" && grep -qi "^Location: ${N_API[a]}/v1/deployments/x/pause" <<<"$hdrs" ||
	fail "a change sent to the follower b: $hdrs"
[[ $(DROVER_ADDR=${N_API[b]} "$CLI" agents --json | jq '[.[] | select(.status == "accepted")] | length') == 3 ]] ||
	fail "the follower b does not serve the agents from the shared store"
ok "the follower b answers a change 307 to a's URL and serves reads from the shared store"

plan_rolling "$TMP/v1.yaml" 1.0.0
# the CLI: b first; the submit is redirected to a and followed
DROVER_ADDR="${N_API[b]},${N_API[a]}" "$CLI" deploy --wait "$TMP/v1.yaml" >"$TMP/deploy-v1.out" 2>&1 ||
	fail "deploy 1.0.0 through b: $(tail -n 20 "$TMP/deploy-v1.out")"
all_on 1.0.0 || fail "not every service runs 1.0.0"
DEP1=$(pg_sql "SELECT id FROM deployments WHERE version = '1.0.0'")
[[ $(curl -sf --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" "${N_API[b]}/v1/deployments/$DEP1" | jq -r .state) == succeeded ]] ||
	fail "the follower b does not show the finished $DEP1 from the store"
ok "1.0.0 deployed by the CLI through b (307 to a); b shows the finished deployment itself"

# 1. kill -9 of the leader in the middle of a rolling deployment.
plan_rolling "$TMP/v2.yaml" 2.0.0 2500
"$CLI" deploy --json "$TMP/v2.yaml" >"$TMP/v2.json" || fail "deploy 2.0.0"
DEP=$(jq -r .id "$TMP/v2.json")
edge_started() { [[ $(dep_get "$DEP" '.tiers[1].services[0].hosts[0].state') == starting ]]; }
wait_for 60 edge_started || fail "edge tier of $DEP never started: $(dep_get "$DEP" '{state,reason}')"
# the CLI asks the follower b about the running deployment: b sends it to a
DROVER_ADDR=${N_API[b]} "$CLI" status --json "$DEP" >"$TMP/status-b.json" 2>"$TMP/status-b.err" ||
	fail "drover status through the follower b: $(cat "$TMP/status-b.err")"
[[ $(jq -r .id "$TMP/status-b.json") == "$DEP" && $(jq -r '.tiers | length' "$TMP/status-b.json") == 2 ]] ||
	fail "status through b: $(head -c 300 "$TMP/status-b.json")"
ok "a running deployment asked of the follower b: 307 to the leader a, the CLI follows it"
pid_alpha=$(svc_pid core-1 alpha)
pid_beta=$(svc_pid core-2 beta)
declare -A log_at=()
for g in core-1 core-2 edge-1; do log_at[$g]=$(wc -l <"$TMP/$g.log"); done
t0=$(date +%s%N)
node_kill a KILL
wait_for $((LEASE_S * 4)) leads b || fail "node b did not lead after the kill: $(tail -n 5 "$TMP/coord-b.log")"
t_lead=$((($(date +%s%N) - t0) / 1000000))
((t_lead <= LEASE_S * 1000 + 3000)) || fail "node b led ${t_lead} ms after the kill (lease ${LEASE_S}s)"
grep -q 'msg="this node leads the group" node=b epoch=2' "$TMP/coord-b.log" || fail "node b's epoch is not 2"
wait_for 10 role_is b leader || fail "node b /healthz: $(health b)"
wait_for 30 all_with b || fail "the agents did not move to b: $(cat "$TMP"/core-1/state/link-status.json)"
t_agents=$((($(date +%s%N) - t0) / 1000000))
# Told NOT_LEADER by b while it still followed, no agent tried the dead a
# (or c, not started): a Hello to a node without a connection waits out the
# whole request timeout; they ask b again until it leads.
for g in core-1 core-2 edge-1; do
	! tail -n +"$((log_at[$g] + 1))" "$TMP/$g.log" | grep 'msg="trying another coordinator node"' |
		grep -q -e "to=${N_LINK[a]}" -e "to=${N_LINK[c]}" ||
		fail "$g tried a node without a connection after the kill: $(tail -n +"$((log_at[$g] + 1))" "$TMP/$g.log" | grep uplink | head -5)"
done
ok "kill -9 of node a: node b leads (epoch 2, deployments resumed) after ${t_lead} ms (lease ${LEASE_S} s); every agent with b after ${t_agents} ms"
wait_for 90 dep_state_is "$DEP" succeeded || fail "$DEP after the failover: $(dep_get "$DEP" '{state,reason}')"
all_on 2.0.0 || fail "after the failover not every service runs 2.0.0"
[[ $(svc_pid core-1 alpha) == "$pid_alpha" && $(svc_pid core-2 beta) == "$pid_beta" ]] ||
	fail "a host finished before the failover was started again"
dup=$(pg_sql "SELECT count(*) FROM (SELECT agent_id, step_id FROM instructions WHERE deployment_id = '$DEP' GROUP BY agent_id, step_id HAVING count(*) > 1) x")
[[ $dup == 0 ]] || fail "$dup steps queued twice"
ok "node b resumed $DEP: succeeded, every host on 2.0.0, finished hosts untouched, no step queued twice"
# the CLI's first address is the dead a: it goes on to b
"$CLI" history --json >"$TMP/list.json" 2>"$TMP/list.err" || fail "CLI with a dead first address: $(cat "$TMP/list.err")"
jq -e --arg id "$DEP" '.. | objects | select(.id? == $id and .state? == "succeeded")' "$TMP/list.json" >/dev/null ||
	fail "the CLI's list lacks $DEP: $(head -c 400 "$TMP/list.json")"
ok "the CLI given every node's address skips the dead a and reads from b"

# 2. SIGSTOP of the leader past its lease; c takes over on its own addresses.
node_start c
wait_for 30 follower_of c b || fail "node c does not serve as b's follower: $(health c)"
kill -STOP "${PIDS[coord-b]}"
wait_for $((LEASE_S * 4)) leads c || fail "node c did not lead while b was stopped"
grep -q 'msg="this node leads the group" node=c epoch=3' "$TMP/coord-c.log" || fail "node c's epoch is not 3"
wait_for 10 role_is c leader || fail "node c /healthz: $(health c)"
ok "SIGSTOP of node b past its lease: node c leads (epoch 3) on its own addresses"
kill -CONT "${PIDS[coord-b]}"
wait_for 30 follows b 2 || fail "node b did not rejoin as a follower: $(tail -n 8 "$TMP/coord-b.log")"
grep -q 'msg="leadership lost: stopping to rejoin the group as a follower"' "$TMP/coord-b.log" ||
	fail "node b did not notice it lost the lease"
kill -0 "${PIDS[coord-b]}" || fail "node b exited instead of rejoining"
wait_for 30 follower_of b c || fail "node b does not serve as c's follower: $(health b)"
# Nothing of b's lost term was committed after c took over: the lease row is c's.
[[ $(pg_sql "SELECT epoch || ' ' || split_part(holder, '/', 1) FROM leader_lease") == "3 c" ]] ||
	fail "lease row: $(pg_sql 'SELECT * FROM leader_lease')"
wait_for 30 all_with c || fail "the agents did not move to c"
ok "SIGCONT: node b found its lease gone and rejoined (same process) as c's follower; the agents are with c"

# 3. A graceful stop hands over at once.
t0=$(date +%s%N)
node_kill c TERM
wait_for 10 leads b 2 || fail "node b did not take over after c's graceful stop"
t_hand=$((($(date +%s%N) - t0) / 1000000))
((t_hand < LEASE_S * 1000)) || fail "handover took ${t_hand} ms: the lease was waited out"
wait_for 10 role_is b leader || fail "node b does not lead after the handover"
ok "SIGTERM of node c: node b leads after ${t_hand} ms (no lease wait), epoch 4"

# 4. PostgreSQL restarted in the middle of a deployment.
plan_rolling "$TMP/v1b.yaml" 1.0.0 2500
"$CLI" deploy --json "$TMP/v1b.yaml" >"$TMP/v1b.json" || fail "deploy 1.0.0 again"
DEP=$(jq -r .id "$TMP/v1b.json")
wait_for 60 edge_started || fail "edge tier of $DEP never started: $(dep_get "$DEP" '{state,reason}')"
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w restart >/dev/null 2>&1 || fail "cannot restart PostgreSQL"
ok "PostgreSQL restarted while $DEP runs its second tier"
wait_for 90 dep_state_is "$DEP" succeeded || fail "$DEP after the restart of PostgreSQL: $(dep_get "$DEP" '{state,reason}')"
all_on 1.0.0 || fail "after the restart of PostgreSQL not every service runs 1.0.0"
ok "the nodes reconnected and $DEP succeeded, every host on 1.0.0"
