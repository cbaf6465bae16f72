#!/usr/bin/env bash
# demo_ha.sh (make demo-ha): high availability in about a minute. A real
# PostgreSQL (tests/lib/pg.sh: a throwaway server in a temp dir, unix socket
# only), two droverd nodes made by `droverd init --postgres`, each with its
# own key, link and API address; three real drover-agents that know both
# nodes; a real registry with the berry images. A rolling deployment of
# 2.0.0, the leader killed (kill -9) in the middle of it; the other node takes
# the lease, resumes the deployment where it stood and finishes it. Prints
# what happens; everything runs on 127.0.0.1 and is removed at the end.
#
#   bash tests/e2e/demo_ha.sh   (DROVERD, DROVER_AGENT, DROVER_CLI, DROVER_BUILD
#                                set by make demo-ha; KEEP_TMP=1 keeps the files)
TEST_NAME=demo_ha
source "$(dirname "${BASH_SOURCE[0]}")/../integration/deploy_lib.sh"
# shellcheck source=../lib/pg.sh
source "$REPO_DIR/tests/lib/pg.sh"

LEASE_S=${DEMO_LEASE_S:-3}
T0=$(date +%s%N)
say() { printf '[%5.1fs] %s\n' "$(((($(date +%s%N) - T0) / 1000000)))e-3" "$*"; }
pg_trap _deploy_cleanup

pg_start "$TMP/pg" || fail "cannot start PostgreSQL"
say "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') running (a throwaway server, unix socket $PG_SOCK)"
deploy_setup
say "registry on $REG with the berry images 1.0.0 and 2.0.0"

# Two nodes, each with its own directory, key, link and API address.
declare -A DIR LINK API
ports=()
for n in a b; do
	DIR[$n]=$TMP/node-$n
	LINK[$n]=$(pick_port "${ports[@]}" "$REG_PORT")
	ports+=("${LINK[$n]}")
	API[$n]=$(pick_port "${ports[@]}" "$REG_PORT")
	ports+=("${API[$n]}")
	"$DROVERD" init --dir "${DIR[$n]}" --postgres "$PG_CONNINFO" --node "$n" --enroll-token \
		--listen "tcp://127.0.0.1:${LINK[$n]}" --api "127.0.0.1:${API[$n]}" >"$TMP/init-$n.log" 2>&1 ||
		fail "droverd init node $n: $(cat "$TMP/init-$n.log")"
	set_opt "${DIR[$n]}/droverd.yaml" poll_timeout 2s
	set_opt "${DIR[$n]}/droverd.yaml" liveness_timeout 5s
	set_opt "${DIR[$n]}/droverd.yaml" pending_retry 300ms
	set_opt "${DIR[$n]}/droverd.yaml" insecure_registry true
	set_opt "${DIR[$n]}/droverd.yaml" lease "${LEASE_S}s"
done
say "droverd init --postgres: node a (link :${LINK[a]}, API :${API[a]}), node b (link :${LINK[b]}, API :${API[b]}); lease ${LEASE_S} s"

node_start() {
	"$DROVERD" --config "${DIR[$1]}/droverd.yaml" >>"$TMP/node-$1.log" 2>&1 &
	PIDS[node-$1]=$!
}
leads() { grep -q "msg=\"this node leads the group\" node=$1 epoch=$2" "$TMP/node-$1.log" 2>/dev/null; }
follows() { grep -q 'msg="following: waiting for the leader lease"' "$TMP/node-$1.log" 2>/dev/null; }
export DROVER_ADDR=http://127.0.0.1:${API[a]},http://127.0.0.1:${API[b]}
export DROVER_TOKEN_FILE=${DIR[a]}/admin.token
ADMIN_TOKEN=$(cat "${DIR[a]}/admin.token")
COORD=${DIR[a]} # link_lib's helpers (agents_json, dep_get) talk to the API
LINK_URL=tcp://127.0.0.1:${LINK[a]} # agent_init: the first URL and key, node b added
node_start a
wait_for 60 leads a 1 || fail "node a does not lead: $(tail -n 5 "$TMP/node-a.log")"
node_start b
wait_for 30 follows b || fail "node b does not follow: $(tail -n 5 "$TMP/node-b.log")"
api_of_leader() { # the first API address that answers /v1/leader with 200
	local n
	for n in a b; do
		curl -sf --max-time 1 "http://127.0.0.1:${API[$n]}/v1/leader" >/dev/null && { echo "${API[$n]}"; return 0; }
	done
	return 1
}
say "node a leads the group (epoch 1); node b follows"

for spec in core-1:core core-2:core edge-1:edge; do
	deploy_agent "${spec%%:*}" "tier=${spec#*:}" -- --coordinator "tcp://127.0.0.1:${LINK[b]}" \
		--coordinator-key "${DIR[b]}/coordinator.pub"
done
say "three agents (core-1, core-2, edge-1), each with both nodes' URLs and keys, connected to node a"

# dep_get on whichever node answers (a follower serves reads too, or not at all yet)
dep_any() {
	local n
	for n in a b; do
		curl -sf --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" \
			"http://127.0.0.1:${API[$n]}/v1/deployments/$1" 2>/dev/null | jq -r "$2" && return 0
	done
	return 1
}
plan_rolling "$TMP/v1.yaml" 1.0.0
"$CLI" deploy --wait "$TMP/v1.yaml" >"$TMP/deploy-v1.out" 2>&1 || fail "deploy 1.0.0: $(tail -n 20 "$TMP/deploy-v1.out")"
all_on 1.0.0 || fail "not every service runs 1.0.0"
say "deployment of 1.0.0 succeeded: alpha (core-1), beta (core-2), gamma (edge-1) serve 1.0.0"

plan_rolling "$TMP/v2.yaml" 2.0.0 2500
"$CLI" deploy --json "$TMP/v2.yaml" >"$TMP/v2.json" || fail "deploy 2.0.0"
DEP=$(jq -r .id "$TMP/v2.json")
say "rolling deployment $DEP of 2.0.0 started (tier core, then edge; each start takes 2.5 s)"
edge_started() { [[ $(dep_any "$DEP" '.tiers[1].services[0].hosts[0].state') == starting ]]; }
wait_for 60 edge_started || fail "edge tier of $DEP never started: $(dep_any "$DEP" '{state,reason}')"
pid_alpha=$(svc_pid core-1 alpha)
pid_beta=$(svc_pid core-2 beta)
say "tier core done (alpha, beta on $(svc_version alpha), $(svc_version beta)); edge-1 is starting gamma 2.0.0"
t_kill=$(date +%s%N)
kill -KILL "${PIDS[node-a]}"
wait "${PIDS[node-a]}" 2>/dev/null || true
unset "PIDS[node-a]"
say "kill -9 of node a (the leader) in the middle of $DEP"
wait_for $((LEASE_S * 4)) leads b 2 || fail "node b did not lead: $(tail -n 5 "$TMP/node-b.log")"
say "node b leads (epoch 2), $((($(date +%s%N) - t_kill) / 1000000)) ms after the kill; it resumes $DEP from its last saved state"
reconnected() { [[ $(agents_json_b | jq '[.[] | select(.state == "connected")] | length') == 3 ]]; }
agents_json_b() { DROVER_ADDR=http://127.0.0.1:${API[b]} "$CLI" agents --json 2>/dev/null; }
wait_for 30 reconnected || fail "the agents did not move to node b"
say "the agents moved to node b (they refuse anything older than epoch 2 from now on)"
succeeded() { [[ $(dep_any "$DEP" .state) == succeeded ]]; }
wait_for 90 succeeded || fail "$DEP after the failover: $(dep_any "$DEP" '{state,reason}')"
all_on 2.0.0 || fail "after the failover not every service runs 2.0.0"
[[ $(svc_pid core-1 alpha) == "$pid_alpha" && $(svc_pid core-2 beta) == "$pid_beta" ]] ||
	fail "a host finished before the failover was started again"
dup=$(pg_sql "SELECT count(*) FROM (SELECT agent_id, step_id FROM instructions WHERE deployment_id = '$DEP' GROUP BY agent_id, step_id HAVING count(*) > 1) x")
[[ $dup == 0 ]] || fail "$dup steps queued twice"
say "$DEP succeeded on node b: gamma serves $(svc_version gamma); alpha and beta, done before the kill, were not touched; no step was queued twice"
echo
echo "  lease row in PostgreSQL: $(pg_sql "SELECT 'holder ' || split_part(holder, '/', 1) || ', epoch ' || epoch FROM leader_lease")"
echo "  drover --coordinator http://127.0.0.1:${API[a]},http://127.0.0.1:${API[b]} status $DEP:"
DROVER_ADDR=http://127.0.0.1:${API[a]},http://127.0.0.1:${API[b]} "$CLI" status "$DEP" 2>&1 | sed 's/^/    /' | head -n 12
echo
say "demo-ha done (docs/ha.md explains the group: lease, epochs, fencing, resume)"
