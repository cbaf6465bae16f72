#!/usr/bin/env bash
# HA link and API (issue 20 B), with two real droverd nodes whose role is
# fixed in droverd.yaml (ha.force_role) and one real agent that knows both:
#   - the agent passes over a follower (NOT_LEADER) and keeps its session
#     with the leader; each node signs with its own key, both in the ring;
#   - the API: /healthz and /v1/leader say leader or follower, a change sent
#     to a follower gets 307 to the leader, the CLI follows it and tries a
#     list of addresses in turn;
#   - failover: the leader killed, the other node leads with epoch 2 on the
#     same database: an instruction queued under epoch 1 is re-signed and
#     runs once, sequence numbers go on, the agent saves epoch 2;
#   - fencing: the old leader back with epoch 1 is refused by the agent
#     (stale_epoch), nothing it queued runs.
TEST_NAME=ha_link
source "$(dirname "$0")/link_lib.sh"

# ha_set FILE KEY VALUE: set a key of the ha: section (commented out by init).
ha_set() {
	sed -i -E "s|^( *)(# )?$2:.*|\1$2: $3|" "$1"
	grep -q -E "^ *$2: $3\$" "$1" || fail "cannot set $2 in $1"
}

coord_init --enroll-token
A_API=$DROVER_ADDR
A_URL=$LINK_URL
ha_set "$COORD/droverd.yaml" force_role leader
ha_set "$COORD/droverd.yaml" force_epoch 1

B=$TMP/coordB
B_LINK_PORT=$(pick_port "$LINK_PORT" "$API_PORT")
B_API_PORT=$(pick_port "$LINK_PORT" "$API_PORT" "$B_LINK_PORT")
B_URL=tcp://127.0.0.1:$B_LINK_PORT
B_API=http://127.0.0.1:$B_API_PORT
"$DROVERD" init --dir "$B" --listen "$B_URL" --api "127.0.0.1:$B_API_PORT" >"$TMP/initB.log" 2>&1 ||
	fail "droverd init B: $(cat "$TMP/initB.log")"
set_opt "$B/droverd.yaml" poll_timeout 2s
set_opt "$B/droverd.yaml" liveness_timeout 5s
ha_set "$B/droverd.yaml" force_role follower
ha_set "$B/droverd.yaml" force_leader "$A_API"
B_PID=
b_start() {
	"$DROVERD" --config "$B/droverd.yaml" >>"$TMP/coordB.log" 2>&1 &
	B_PID=$!
	PIDS[coordB]=$B_PID # stopped by link_lib's cleanup
	wait_for 60 curl -sf --max-time 2 "$B_API/healthz" || fail "droverd B did not come up"
}
b_stop() {
	kill "-${1:-TERM}" "$B_PID"
	wait "$B_PID" 2>/dev/null || true
	unset "PIDS[coordB]"
	B_PID=
}

b_start

# the agent: the follower first in its list, both nodes' keys in its ring
"$AGENT" init --dir "$TMP/a1" --coordinator "$B_URL" --coordinator "$A_URL" \
	--coordinator-key "$COORD/coordinator.pub" --coordinator-key "$B/coordinator.pub" \
	--id a1 --enroll-token-file "$COORD/enroll.token" >"$TMP/a1-init.log" 2>&1 ||
	fail "agent init: $(cat "$TMP/a1-init.log")"
set_opt "$TMP/a1/agent.yaml" reconnect_min 100ms
set_opt "$TMP/a1/agent.yaml" reconnect_max 1s
set_opt "$TMP/a1/agent.yaml" request_timeout 3s
grep -q "$B_URL" "$TMP/a1/agent.yaml" && grep -q "$A_URL" "$TMP/a1/agent.yaml" ||
	fail "agent.yaml does not list both nodes"
# the follower alone first: the agent must hear NOT_LEADER, then find A
agent_start a1
b_not_leader() { [[ $(jq -r '.rejected.not_leader' "$B/link-stats.json") -ge 1 ]]; }
wait_for 20 b_not_leader || fail "the follower did not answer NOT_LEADER"
coord_start
wait_for 30 is_state a1 connected || fail "a1 not connected: $(agents_json)"
with_node() { [[ $(agent_status a1 .coordinator) == "$1" && $(agent_status a1 .session) == accepted ]]; }
wait_for 10 with_node "$A_URL" || fail "a1's session is not with the leader: $(cat "$TMP/a1/state/link-status.json")"
ok "the agent passed over the follower (NOT_LEADER) to the leader"

acked() { [[ $(sql "select state from instructions where agent_id='a1' and step_id='$1'") == acked ]]; }
seq_of() { sql "select seq from instructions where agent_id='a1' and step_id='$1'"; }
instruct a1 s1 /bin/sh -c "echo s1 >> $TMP/a1.out" >/dev/null
wait_for 30 acked s1 || fail "s1 not acknowledged"
wait_for 10 has_lines "$TMP/a1.out" 1 || fail "s1 did not run"
[[ $(jq -r .epoch "$TMP/a1/state/link.json") == 1 ]] || fail "epoch 1 not saved: $(cat "$TMP/a1/state/link.json")"
ok "an instruction of the leader (epoch 1) ran; the agent saved epoch 1"

# ---- the API on both nodes
h=$(curl -sS --max-time 5 "$B_API/healthz")
[[ $(jq -r .role <<<"$h") == follower && $(jq -r .leader <<<"$h") == "$A_API" ]] ||
	fail "B /healthz: $h"
[[ $(curl -sS --max-time 5 "$A_API/healthz" | jq -r .role) == leader ]] || fail "A /healthz"
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
[[ $(code "$A_API/v1/leader") == 200 && $(code "$B_API/v1/leader") == 503 ]] ||
	fail "/v1/leader: A $(code "$A_API/v1/leader") B $(code "$B_API/v1/leader")"
ok "/healthz says leader or follower; /v1/leader is 200 on the leader only"

hdrs=$(curl -sS -D - -o /dev/null --max-time 5 -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
	"$B_API/v1/agents/a1/accept?x=a%20b")
grep -q "^HTTP/1.1 307" <<<"$hdrs" || fail "a change on the follower: $hdrs"
grep -qi "^Location: $A_API/v1/agents/a1/accept?x=a%20b" <<<"$hdrs" || fail "Location: $hdrs"
# (B has a store of its own until the failover: its own token)
[[ $(code -H "Authorization: Bearer $(cat "$B/admin.token")" "$B_API/v1/agents") == 200 ]] ||
	fail "a read on the follower is not served"
ok "a follower serves reads and redirects changes (307, query kept) to the leader"

# the CLI: a dead address first, then the follower: it goes on, follows the redirect
dead=http://127.0.0.1:$(pick_port "$LINK_PORT" "$API_PORT" "$B_LINK_PORT" "$B_API_PORT")
DROVER_ADDR="$dead,$B_API" "$CLI" agents accept a1 >"$TMP/cli.out" 2>&1 ||
	fail "CLI through the follower: $(cat "$TMP/cli.out")"
last=$(sql "select method||' '||path||' '||status from audit order by id desc limit 1")
[[ $last == "POST /v1/agents/a1/accept 200" ]] || fail "the accept did not reach the leader: $last"
DROVER_ADDR="$dead,$A_API" "$CLI" agents --json | jq -e '.[] | select(.id == "a1")' >/dev/null ||
	fail "CLI read through the address list"
ok "the CLI tries its addresses in turn and follows the follower's redirect"

# ---- failover: queued under epoch 1 while the agent is away, then A dies
agent_stop a1 KILL
instruct a1 s2 /bin/sh -c "echo s2 >> $TMP/a1.out" >/dev/null
coord_stop KILL
b_stop TERM
cp "$COORD/droverd.db" "$TMP/old-leader.db" # what the old leader will come back with
set_opt "$B/droverd.yaml" database "\"$COORD/droverd.db\""
ha_set "$B/droverd.yaml" force_role leader
ha_set "$B/droverd.yaml" force_epoch 2
b_start
t0=$(date +%s%N)
agent_start a1
wait_for 30 acked s2 || fail "s2 (queued under epoch 1) not acknowledged after the failover"
echo "# the agent's first step under the new leader: $((($(date +%s%N) - t0) / 1000000)) ms after it served (agent start included)"
wait_for 10 has_lines "$TMP/a1.out" 2 || fail "s2 did not run"
wait_for 10 with_node "$B_URL" || fail "a1 is not with the new leader"
[[ $(jq -r .epoch "$TMP/a1/state/link.json") == 2 ]] || fail "epoch 2 not saved"
ok "after the failover the new leader re-signed the queued instruction (epoch 2); it ran once"
export DROVER_ADDR=$B_API
instruct a1 s3 /bin/sh -c "echo s3 >> $TMP/a1.out" >/dev/null
wait_for 30 acked s3 || fail "s3 not acknowledged"
[[ $(seq_of s3) -gt $(seq_of s2) && $(seq_of s2) -gt $(seq_of s1) ]] ||
	fail "sequence numbers did not go on: s1 $(seq_of s1) s2 $(seq_of s2) s3 $(seq_of s3)"
ok "sequence numbers go on across the failover (s1 $(seq_of s1), s2 $(seq_of s2), s3 $(seq_of s3))"

# ---- the leader killed under a running agent: how long until the agent works with B
t0=$(date +%s%N)
b_stop KILL
b_start
instruct a1 s3b /bin/sh -c "echo s3b >> $TMP/a1.out" >/dev/null
wait_for 30 acked s3b || fail "s3b not acknowledged after the leader was killed and came back"
echo "# leader killed and back: the agent ran a step $((($(date +%s%N) - t0) / 1000000)) ms after the kill (droverd start included)"
ok "the agent returns to a leader killed under it (its connection drop ends the poll at once)"

# ---- fencing: the old leader (epoch 1) comes back while B is down
b_stop KILL
set_opt "$COORD/droverd.yaml" database "\"$TMP/old-leader.db\""
export DROVER_ADDR=$A_API
coord_start
instruct a1 stale /bin/sh -c "echo stale >> $TMP/a1.out" >/dev/null
stale_seen() { [[ $(agent_stat a1 .rejected.stale_epoch) -ge 1 ]]; }
wait_for 30 stale_seen || fail "the agent did not refuse the old leader: $(cat "$TMP/a1/state/link-stats.json")"
sleep 2 # give a wrong execution the chance to show
[[ $(lines "$TMP/a1.out") == 4 ]] || fail "the old leader's instruction ran: $(cat "$TMP/a1.out")"
[[ $(jq -r .epoch "$TMP/a1/state/link.json") == 2 ]] || fail "the epoch went back"
ok "the agent refuses the old leader's lower epoch; nothing of it runs"

# B leads again: the agent returns, work goes on
coord_stop KILL
b_start
export DROVER_ADDR=$B_API
instruct a1 s4 /bin/sh -c "echo s4 >> $TMP/a1.out" >/dev/null
wait_for 30 acked s4 || fail "s4 not acknowledged"
wait_for 10 has_lines "$TMP/a1.out" 5 || fail "s4 did not run"
[[ $(tr '\n' ' ' <"$TMP/a1.out") == "s1 s2 s3 s3b s4 " ]] || fail "ran: $(tr '\n' ' ' <"$TMP/a1.out")"
ok "the agent follows the leader back; every step ran exactly once"
