# shellcheck shell=bash
# ha_lib.sh: an HA group of droverd nodes on a real PostgreSQL for the
# integration tests (source it after deploy_lib.sh). Each node has its own
# signing key, link and API addresses and API URL (ha.url); agents list every
# node's link URL (b first: a follower they must pass over) and every node's
# key; DROVER_ADDR lists every node's API.
#
#   ha_setup NODE...           PostgreSQL, the images, droverd init per node
#                              (the first is $COORD), an admin token
#   node_start / node_kill NAME [SIG]   run / signal and reap a node
#   leads NAME [N]             the node resumed its deployments and leads
#                              (the N-th time); follows NAME [N] likewise
#   health NAME, role_is NAME ROLE, follower_of NAME LEADER   its /healthz
#   all_with NODE AGENT...     every agent's session is with NODE
#   dep_get ID JQ              a deployment through any node (307 followed)
# shellcheck source=../lib/pg.sh
source "$REPO_DIR/tests/lib/pg.sh"

LEASE_S=3
pg_trap _deploy_cleanup

declare -A N_DIR=() N_LINK=() N_API=()
NODES=()

# node_conf NAME: the group's store, this node's name, API URL and lease.
node_conf() {
	local f=${N_DIR[$1]}/droverd.yaml
	set_opt "$f" dsn "\"$PG_CONNINFO\""
	sed -i -E "s|^( *)# node:\$|\1node: $1|; s|^( *)# url:\$|\1url: ${N_API[$1]}|" "$f"
	grep -q "^  node: $1\$" "$f" && grep -q "^  url: ${N_API[$1]}\$" "$f" ||
		fail "cannot set ha.node and ha.url in $f"
	set_opt "$f" lease "${LEASE_S}s"
	set_opt "$f" insecure_registry true
	chmod 600 "$f"
}
# node_init NAME: droverd init with addresses and a key of its own.
node_init() {
	local n=$1 used
	used="${N_LINK[*]} ${N_API[*]} $REG_PORT"
	used=${used//[^0-9 ]/}
	if [[ $n == "${NODES[0]}" ]]; then
		coord_init # $COORD, $LINK_PORT, $API_PORT, DROVER_TOKEN_FILE
		N_DIR[$n]=$COORD
		N_LINK[$n]=$LINK_URL
		N_API[$n]=http://127.0.0.1:$API_PORT
	else
		local lp ap
		lp=$(pick_port "$LINK_PORT" "$API_PORT" $used)
		ap=$(pick_port "$LINK_PORT" "$API_PORT" "$lp" $used)
		N_DIR[$n]=$TMP/coord-$n
		N_LINK[$n]=tcp://127.0.0.1:$lp
		N_API[$n]=http://127.0.0.1:$ap
		"$DROVERD" init --dir "${N_DIR[$n]}" --listen "${N_LINK[$n]}" --api "127.0.0.1:$ap" \
			>"$TMP/init-$n.log" 2>&1 || fail "droverd init $n: $(cat "$TMP/init-$n.log")"
		set_opt "${N_DIR[$n]}/droverd.yaml" poll_timeout 2s
		set_opt "${N_DIR[$n]}/droverd.yaml" liveness_timeout 5s
		set_opt "${N_DIR[$n]}/droverd.yaml" pending_retry 300ms
	fi
	node_conf "$n"
}
node_start() {
	"$DROVERD" --config "${N_DIR[$1]}/droverd.yaml" >>"$TMP/coord-$1.log" 2>&1 &
	PIDS[coord-$1]=$!
}
node_kill() { # NAME SIGNAL
	kill "-$2" "${PIDS[coord-$1]}"
	wait "${PIDS[coord-$1]}" 2>/dev/null || true
	unset "PIDS[coord-$1]"
}
logs() { grep -c "$2" "$TMP/coord-$1.log" 2>/dev/null || true; }
# leads NAME [N]: the node resumed and leads (the N-th time)
leads() { [[ $(logs "$1" 'msg="leading: deployments resumed') -ge ${2:-1} ]]; }
follows() { [[ $(logs "$1" 'msg="following: waiting for the leader lease"') -ge ${2:-1} ]]; }
health() { curl -sf --max-time 2 "${N_API[$1]}/healthz"; }
role_is() { [[ $(health "$1" | jq -r .role) == "$2" ]]; }
# follower_of NAME LEADER: serves as a follower that points at LEADER's URL
follower_of() {
	local h
	h=$(health "$1") || return 1
	[[ $(jq -r .role <<<"$h") == follower && $(jq -r .leader <<<"$h") == "${N_API[$2]}" ]]
}
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }

ha_setup() {
	local n node_ports
	NODES=("$@")
	pg_start "$TMP/pg" || fail "cannot start PostgreSQL"
	deploy_setup
	for n in "${NODES[@]}"; do node_init "$n"; done
	# The services' ports again, apart from every node's (none listens yet).
	node_ports="${N_LINK[*]} ${N_API[*]}"
	node_ports=${node_ports//[^0-9 ]/}
	# shellcheck disable=SC2086
	SVC_PORT[alpha]=$(pick_port "$REG_PORT" $node_ports)
	# shellcheck disable=SC2086
	SVC_PORT[beta]=$(pick_port "$REG_PORT" $node_ports "${SVC_PORT[alpha]}")
	# shellcheck disable=SC2086
	SVC_PORT[gamma]=$(pick_port "$REG_PORT" $node_ports "${SVC_PORT[alpha]}" "${SVC_PORT[beta]}")
	for n in "${NODES[@]}"; do
		[[ $n == "${NODES[0]}" || $(sha256sum <"${N_DIR[$n]}/coordinator.pub") != $(sha256sum <"$COORD/coordinator.pub") ]] ||
			fail "node $n shares ${NODES[0]}'s key"
	done
	ADMIN_TOKEN=$("$DROVERD" token create --config "$COORD/droverd.yaml" --name ha-admin --role admin 2>/dev/null) ||
		fail "cannot create an admin token in PostgreSQL"
	printf '%s\n' "$ADMIN_TOKEN" >"$COORD/admin.token"
	DROVER_ADDR=
	for n in "${NODES[@]}"; do DROVER_ADDR+=${DROVER_ADDR:+,}${N_API[$n]}; done
	export DROVER_ADDR
}

# Agents list every node (a follower first: it must pass over it) and
# every node's key (agent_init of link_lib, for a group); the test's fast
# link timers unless HA_AGENT_DEFAULT_TIMERS=1 (drover-agent init's own).
agent_init() {
	local name=$1 n args=()
	shift
	for n in "${NODES[@]:1}" "${NODES[0]}"; do args+=(--coordinator "${N_LINK[$n]}"); done
	for n in "${NODES[@]}"; do args+=(--coordinator-key "${N_DIR[$n]}/coordinator.pub"); done
	"$AGENT" init --dir "$TMP/$name" "${args[@]}" --id "$name" "$@" \
		>"$TMP/$name-init.log" 2>&1 || fail "agent init $name: $(cat "$TMP/$name-init.log")"
	[[ ${HA_AGENT_DEFAULT_TIMERS:-0} == 1 ]] && return 0
	set_opt "$TMP/$name/agent.yaml" reconnect_min 100ms
	set_opt "$TMP/$name/agent.yaml" reconnect_max 1s
	set_opt "$TMP/$name/agent.yaml" request_timeout 3s
}
# dep_get ID JQ through any node (a follower sends a running deployment's
# view to the leader: 307, followed with the token)
dep_get() {
	local n out
	for n in "${NODES[@]}"; do
		out=$(curl -sf --location-trusted --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" \
			"${N_API[$n]}/v1/deployments/$1") || continue
		jq -r "$2" <<<"$out"
		return 0
	done
	return 1
}
with_node() { [[ $(agent_status "$1" .coordinator) == "${N_LINK[$2]}" && $(agent_status "$1" .session) == accepted ]]; }
all_with() {
	local n=$1 a agents
	shift
	agents=("$@")
	((${#agents[@]} > 0)) || agents=(core-1 core-2 edge-1)
	for a in "${agents[@]}"; do with_node "$a" "$n" || return 1; done
}

