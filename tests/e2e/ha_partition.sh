#!/usr/bin/env bash
# ha_partition.sh (CTest e2e_ha_partition): an agent partitioned from the
# leader of an HA group but not from a follower.
#
# Nodes n1 and n2 (droverd, each in a namespace of its own, its own key and
# link address; the API on the namespace's loopback) share a real PostgreSQL
# (tests/lib/pg.sh, unix socket only); the agent on h1 lists both nodes and
# both keys. iptables DROP inside h1 between h1 and n1 (drop_on) is the
# partition; nothing else is cut.
#
#   1. While cut off from the leader n1, the agent reaches the follower n2,
#      which refuses it (NOT_LEADER) and sends it nothing: an instruction
#      queued at the leader meanwhile waits (neither node delivers it, the
#      agent does not run it), the leader sees the agent disconnected.
#   2. Healed: the agent is back with n1 by itself and the waiting
#      instruction runs, once.
#   3. Cut off from n1 again, n1 is killed (-9): n2 wins the lease and serves
#      the agent it can reach; an instruction queued at n2 runs once and the
#      agent saves n2's epoch.
#
#   sudo bash tests/e2e/ha_partition.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"
# shellcheck source=../lib/pg.sh
source "$E2E_ROOT/tests/lib/pg.sh"

e2e_require_root
[[ -x ${PG_BIN:-}/initdb ]] || skip "no PostgreSQL server (initdb) installed (make deps)"
e2e_require_tools curl jq
net_up n1 n2 h1
net_root_guarded || fail "the root namespace could reach the test subnet"

PGTMP=$(mktemp -d /tmp/drv-ha-partition.XXXXXX)
e2e_at_exit rm -rf "$PGTMP"
e2e_at_exit pg_stop
pg_start "$PGTMP/pg" || fail "cannot start PostgreSQL"
DROVERD_BIN=$(e2e_bin droverd)
AGENT_BIN=$(e2e_bin drover-agent)
LINK_PORT=7700
API=http://127.0.0.1:7780 # inside each node's namespace
declare -A DIR=() LINK=()

node_init() {
	local n=$1 f
	DIR[$n]=$E2E_RUN/$n
	LINK[$n]=tcp://$(addr_of "$n"):$LINK_PORT
	in_ns "$n" "$DROVERD_BIN" init --dir "${DIR[$n]}" --listen "${LINK[$n]}" --api 127.0.0.1:7780 \
		>>"$E2E_RUN/logs/init-$n.log" 2>&1 || fail "droverd init $n: $(tail -n 5 "$E2E_RUN/logs/init-$n.log")"
	f=${DIR[$n]}/droverd.yaml
	drover_conf_set "$f" poll_timeout 2s && drover_conf_set "$f" liveness_timeout 5s &&
		drover_conf_set "$f" dsn "\"$PG_CONNINFO\"" && drover_conf_set "$f" lease 3s || fail "conf $n"
	sed -i -E "s|^( *)# node:\$|\1node: $n|; s|^( *)# url:\$|\1url: $API|" "$f"
	grep -q "^  node: $n\$" "$f" || fail "cannot set ha.node in $f"
	chmod 600 "$f"
}
node_start() { proc_start "droverd-$1" "$1" "$DROVERD_BIN" --config "${DIR[$1]}/droverd.yaml"; }
node_log() { proc_log "droverd-$1"; }
leads() { grep -q 'msg="leading: deployments resumed' "$(node_log "$1")"; }
follows() { grep -q 'msg="following: waiting for the leader lease"' "$(node_log "$1")"; }
# api NODE METHOD PATH [BODY]: the node's API, from inside its namespace
api() {
	in_ns "$1" curl -sS --max-time 10 -X "$2" -H "Authorization: Bearer $TOKEN" \
		${4:+--data-binary "$4"} "$API$3"
}
agent_state() { api "$1" GET /v1/agents/h1 | jq -r .state; }
instr_state() { pg_sql "SELECT state FROM instructions WHERE agent_id = 'h1' AND step_id = '$1'"; }
instruct() { # NODE STEP: a step that appends its id to h1's file
	api "$1" POST /v1/agents/h1/instructions \
		"$(jq -nc --arg s "$2" --arg f "$OUT" '{step_id: $s, run: ["/bin/sh", "-c", "echo \($s) >> \($f)"]}')" >/dev/null
}
ran() { [[ $(grep -c "^$1\$" "$OUT" 2>/dev/null) == 1 ]]; }
status() { jq -r "$1" "$E2E_RUN/agents/h1/state/link-status.json" 2>/dev/null; }
with() { [[ $(status .coordinator) == "${LINK[$1]}" && $(status .session) == accepted ]]; }
not_leader_of() { jq -r '.rejected.not_leader // 0' "${DIR[$1]}/link-stats.json" 2>/dev/null || echo 0; }
sent_by() { grep -c 'msg="instruction sent"' "$(node_log "$1")" || true; }

node_init n1
node_init n2
TOKEN=$(in_ns n1 "$DROVERD_BIN" token create --config "${DIR[n1]}/droverd.yaml" --name ha-admin --role admin 2>/dev/null) ||
	fail "cannot create an admin token in PostgreSQL"
node_start n1
wait_for "n1 leads" 60 leads n1 || fail "n1 does not lead"
node_start n2
wait_for "n2 follows" 30 follows n2 || fail "n2 does not follow"
wait_for "n2 serves as a follower" 30 eval '[[ $(in_ns n2 curl -sf --max-time 2 $API/healthz | jq -r .role) == follower ]]' ||
	fail "n2 /healthz"
ok "n1 leads and n2 follows, each in its namespace, on one PostgreSQL"

OUT=$E2E_RUN/h1.out
svcuser_ensure || fail "service user"
in_ns h1 "$AGENT_BIN" init --dir "$E2E_RUN/agents/h1" --id h1 \
	--coordinator "${LINK[n1]}" --coordinator "${LINK[n2]}" \
	--coordinator-key "${DIR[n1]}/coordinator.pub" --coordinator-key "${DIR[n2]}/coordinator.pub" \
	>>"$E2E_RUN/logs/agent-h1-init.log" 2>&1 || fail "agent init"
for kv in "reconnect_min 100ms" "reconnect_max 1s" "request_timeout 3s"; do
	# shellcheck disable=SC2086
	drover_conf_set "$E2E_RUN/agents/h1/agent.yaml" $kv || fail "agent.yaml $kv"
done
proc_start agent-h1 h1 "$AGENT_BIN" --config "$E2E_RUN/agents/h1/agent.yaml"
wait_for "h1 pending" 30 eval '[[ $(agent_state n1) == pending ]]' || fail "h1 not pending"
api n1 POST /v1/agents/h1/accept >/dev/null
wait_for "h1 with n1" 30 with n1 || fail "h1 not with n1: $(status .)"
instruct n1 s1
wait_for "s1 ran" 30 ran s1 || fail "s1 did not run"
ok "h1 (listing n1 and n2) is with the leader n1; s1 ran"

# 1. partitioned from the leader, not from the follower
refused0=$(not_leader_of n2)
drop_on h1 n1 || fail "drop_on h1 n1"
wait_for "n2 refuses h1" 30 eval '(($(not_leader_of n2) > refused0))' || fail "h1 never reached n2"
wait_for "n1 sees h1 gone" 30 eval '[[ $(agent_state n1) == disconnected ]]' || fail "n1: h1 $(agent_state n1)"
instruct n1 s2
sleep 6 # several polls of h1 at n2 and a liveness period
[[ $(instr_state s2) == queued ]] || fail "s2 is $(instr_state s2) while h1 cannot reach the leader"
! grep -q '^s2$' "$OUT" 2>/dev/null || fail "s2 ran while h1 was cut off from the leader"
[[ $(sent_by n2) == 0 ]] || fail "the follower n2 sent instructions"
ok "cut off from n1: h1 reached n2, which refused it (NOT_LEADER $refused0 -> $(not_leader_of n2)) and sent nothing; s2 waits queued, n1 sees h1 disconnected"

# 2. healed: back with the leader, s2 runs once
undrop h1
wait_for "h1 back with n1" 30 with n1 || fail "h1 not back with n1: $(status .)"
wait_for "s2 ran" 30 ran s2 || fail "s2 did not run after the heal"
wait_for "s2 acked" 10 eval '[[ $(instr_state s2) == acked ]]' || fail "s2: $(instr_state s2)"
ok "healed: h1 is back with n1 by itself; s2 ran once"

# 3. cut off from n1 again, n1 dies: n2 takes over and serves h1
drop_on h1 n1 || fail "drop_on h1 n1"
proc_signal droverd-n1 KILL
wait_for "n2 leads" 20 leads n2 || fail "n2 did not lead after the kill of n1"
wait_for "h1 with n2" 30 with n2 || fail "h1 not with n2: $(status .)"
instruct n2 s3
wait_for "s3 ran" 30 ran s3 || fail "s3 did not run"
[[ $(jq -r .epoch "$E2E_RUN/agents/h1/state/link.json") == 2 ]] || fail "h1's epoch: $(cat "$E2E_RUN/agents/h1/state/link.json")"
for s in s1 s2 s3; do ran "$s" || fail "$s ran $(grep -c "^$s\$" "$OUT") times"; done
ok "n1 killed while h1 was cut off from it: n2 leads (epoch 2) and serves h1; s3 ran once, s1 and s2 were not run again"
undrop h1
