#!/usr/bin/env bash
# test_ha_failover.sh: an HA group of droverd nodes on a real PostgreSQL
# (tests/lib/pg.sh: initdb in the test's temp dir as an unprivileged user,
# unix socket only), three real agents and a real registry.
#
#  1. Nodes a and b share the link and API addresses (only the leader binds
#     them: a follower serves nothing until it leads), so the agents need a
#     single coordinator URL. kill -9 of a in the middle of a rolling
#     deployment: b takes the lease within its time, resumes the deployment
#     from its last saved state, and it ends as without the failover
#     (succeeded, every host on the new version, finished hosts untouched,
#     no step queued twice).
#  2. A third node c on addresses of its own. SIGSTOP of the leader b past
#     its lease: c leads (a new epoch). SIGCONT: b finds its lease gone,
#     stops serving and rejoins the group as a follower (same process, its
#     addresses closed).
#  3. SIGTERM of the leader c hands the lease over at once (NOTIFY): b leads
#     again without waiting out the lease.
TEST_NAME=ha_failover
source "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"
# shellcheck source=../lib/pg.sh
source "$REPO_DIR/tests/lib/pg.sh"

LEASE_S=3
_ha_cleanup() {
	local rc=$?
	pg_stop >/dev/null 2>&1 || true
	_rc "$rc" || _deploy_cleanup
	_deploy_cleanup
}
trap _ha_cleanup EXIT
pg_start "$TMP/pg" || fail "cannot start PostgreSQL"
ok "PostgreSQL running in $TMP/pg (unix socket)"

# node_conf DIR NAME: the group's store and this node's name.
node_conf() {
	set_opt "$1/droverd.yaml" dsn "\"$PG_CONNINFO\""
	sed -i -E "s|^( *)# node:\$|\1node: $2|" "$1/droverd.yaml"
	grep -q "^  node: $2\$" "$1/droverd.yaml" || fail "cannot set ha.node in $1"
	set_opt "$1/droverd.yaml" lease "${LEASE_S}s"
	chmod 600 "$1/droverd.yaml"
}
node_start() { # NAME DIR
	"$DROVERD" --config "$2/droverd.yaml" >>"$TMP/coord-$1.log" 2>&1 &
	PIDS[coord-$1]=$!
}
logs() { grep -c "$2" "$TMP/coord-$1.log" 2>/dev/null || true; }
leads() { [[ $(logs "$1" 'msg="this node leads the group"') -ge ${2:-1} ]]; }
follows() { [[ $(logs "$1" 'msg="following: waiting for the leader lease"') -ge ${2:-1} ]]; }
pg_count() { pg_sql "$1"; }

deploy_setup
coord_init
set_opt "$COORD/droverd.yaml" insecure_registry true
B=$TMP/coord-b
cp -a "$COORD" "$B"
node_conf "$COORD" a
node_conf "$B" b
ADMIN_TOKEN=$("$DROVERD" token create --config "$COORD/droverd.yaml" --name ha-admin --role admin 2>/dev/null) ||
	fail "cannot create an admin token in PostgreSQL"
printf '%s\n' "$ADMIN_TOKEN" >"$COORD/admin.token"

COORD_PID= # node a runs under PIDS like the others
node_start a "$COORD"
wait_for 60 healthy || fail "node a does not serve: $(tail -n 5 "$TMP/coord-a.log")"
leads a || fail "node a serves without leading"
node_start b "$B"
wait_for 30 follows b || fail "node b does not follow: $(tail -n 5 "$TMP/coord-b.log")"
ok "node a leads (epoch 1) and serves; node b follows and serves nothing"

deploy_agent core-1 tier=core
deploy_agent core-2 tier=core
deploy_agent edge-1 tier=edge
plan_rolling "$TMP/v1.yaml" 1.0.0
"$CLI" deploy --wait "$TMP/v1.yaml" >"$TMP/deploy-v1.out" 2>&1 ||
	fail "deploy 1.0.0: $(tail -n 20 "$TMP/deploy-v1.out")"
all_on 1.0.0 || fail "not every service runs 1.0.0"
ok "three agents accepted, 1.0.0 deployed through node a, state in PostgreSQL"

# 1. kill -9 of the leader in the middle of a rolling deployment.
plan_rolling "$TMP/v2.yaml" 2.0.0 2500
"$CLI" deploy --json "$TMP/v2.yaml" >"$TMP/v2.json" || fail "deploy 2.0.0"
DEP=$(jq -r .id "$TMP/v2.json")
edge_started() { [[ $(dep_get "$DEP" '.tiers[1].services[0].hosts[0].state') == starting ]]; }
wait_for 60 edge_started || fail "edge tier of $DEP never started: $(dep_get "$DEP" '{state,reason}')"
pid_alpha=$(svc_pid core-1 alpha)
pid_beta=$(svc_pid core-2 beta)
t0=$(date +%s%N)
kill -KILL "${PIDS[coord-a]}"
wait "${PIDS[coord-a]}" 2>/dev/null || true
unset "PIDS[coord-a]"
wait_for $((LEASE_S * 4)) leads b || fail "node b did not lead after the kill: $(tail -n 5 "$TMP/coord-b.log")"
t_lead=$((($(date +%s%N) - t0) / 1000000))
wait_for 30 healthy || fail "node b does not serve"
t_serve=$((($(date +%s%N) - t0) / 1000000))
((t_lead <= LEASE_S * 1000 + 3000)) || fail "node b led ${t_lead} ms after the kill (lease ${LEASE_S}s)"
grep -q 'msg="this node leads the group" node=b epoch=2' "$TMP/coord-b.log" || fail "node b's epoch is not 2"
ok "kill -9 of node a: node b leads after ${t_lead} ms (lease ${LEASE_S} s), serves after ${t_serve} ms, epoch 2"
wait_for 90 dep_state_is "$DEP" succeeded || fail "$DEP after the failover: $(dep_get "$DEP" '{state,reason}')"
all_on 2.0.0 || fail "after the failover not every service runs 2.0.0"
[[ $(svc_pid core-1 alpha) == "$pid_alpha" && $(svc_pid core-2 beta) == "$pid_beta" ]] ||
	fail "a host finished before the failover was started again"
dup=$(pg_count "SELECT count(*) FROM (SELECT agent_id, step_id FROM instructions WHERE deployment_id = '$DEP' GROUP BY agent_id, step_id HAVING count(*) > 1) x")
[[ $dup == 0 ]] || fail "$dup steps queued twice"
ok "node b resumed $DEP: succeeded, every host on 2.0.0, finished hosts untouched, no step queued twice"

# 2. SIGSTOP of the leader past its lease; a third node takes over.
C=$TMP/coord-c
cp -a "$B" "$C"
C_LINK=$(pick_port "$LINK_PORT" "$API_PORT")
C_API=$(pick_port "$LINK_PORT" "$API_PORT" "$C_LINK")
sed -i -E "s|^( *)node: b\$|\1node: c|; s|127\.0\.0\.1:$LINK_PORT|127.0.0.1:$C_LINK|; s|127\.0\.0\.1:$API_PORT|127.0.0.1:$C_API|" "$C/droverd.yaml"
node_start c "$C"
wait_for 30 follows c || fail "node c does not follow"
c_healthy() { curl -sf --max-time 2 "http://127.0.0.1:$C_API/healthz" >/dev/null; }
kill -STOP "${PIDS[coord-b]}"
wait_for $((LEASE_S * 4)) leads c || fail "node c did not lead while b was stopped"
grep -q 'msg="this node leads the group" node=c epoch=3' "$TMP/coord-c.log" || fail "node c's epoch is not 3"
wait_for 30 c_healthy || fail "node c does not serve on its own addresses"
ok "SIGSTOP of node b past its lease: node c leads (epoch 3) and serves"
kill -CONT "${PIDS[coord-b]}"
wait_for 30 follows b 2 || fail "node b did not rejoin as a follower: $(tail -n 8 "$TMP/coord-b.log")"
grep -q 'msg="leadership lost: stopping to rejoin the group as a follower"' "$TMP/coord-b.log" ||
	fail "node b did not notice it lost the lease"
kill -0 "${PIDS[coord-b]}" || fail "node b exited instead of rejoining"
wait_for 10 bash -c "! curl -sf --max-time 1 $DROVER_ADDR/healthz" || fail "node b still serves as a follower"
# Nothing of b's lost term was committed after c took over: the lease row is c's.
[[ $(pg_count "SELECT epoch || ' ' || split_part(holder, '/', 1) FROM leader_lease") == "3 c" ]] ||
	fail "lease row: $(pg_count 'SELECT * FROM leader_lease')"
ok "SIGCONT: node b found its lease gone, stopped serving and rejoined as a follower (same process)"

# 3. A graceful stop hands over at once.
t0=$(date +%s%N)
kill -TERM "${PIDS[coord-c]}"
wait_for 10 leads b 2 || fail "node b did not take over after c's graceful stop"
t_hand=$((($(date +%s%N) - t0) / 1000000))
wait "${PIDS[coord-c]}" 2>/dev/null || true
unset "PIDS[coord-c]"
((t_hand < LEASE_S * 1000)) || fail "handover took ${t_hand} ms: the lease was waited out"
wait_for 30 healthy || fail "node b does not serve after the handover"
ok "SIGTERM of node c: node b leads after ${t_hand} ms (no lease wait), epoch 4"
