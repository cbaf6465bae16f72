#!/usr/bin/env bash
# Liveness: an agent that dies is disconnected as soon as its connection
# closes; an agent that hangs (SIGSTOP) is disconnected within the liveness
# timeout (5 s here, 2 x poll timeout by default) plus one tick; both come
# back as connected when they return.
TEST_NAME=link_liveness
source "$(dirname "$0")/link_lib.sh"

coord_init --enroll-token
coord_start
for a in dies hangs; do
	agent_init $a --enroll-token-file "$COORD/enroll.token"
	agent_start $a
done
both() { is_state dies connected && is_state hangs connected; }
wait_for 30 both || fail "agents not connected: $(agents_json)"
ok "both agents connected"

start=$(date +%s%N)
agent_stop dies KILL
wait_for 10 is_state dies disconnected || fail "a killed agent is still connected"
ms=$((($(date +%s%N) - start) / 1000000))
((ms < 3000)) || fail "took $ms ms to notice a closed connection"
[[ $(sql "select json_extract(data, '\$.why') from events where kind='agent_disconnected' and agent_id='dies'") == "connection closed" ]] ||
	fail "reason"
ok "a killed agent is disconnected when its connection closes ($ms ms)"

kill -STOP "${PIDS[hangs]}"
start=$(date +%s%N)
wait_for 15 is_state hangs disconnected || fail "a hung agent stayed connected"
ms=$((($(date +%s%N) - start) / 1000000))
((ms <= 5000 + 2000 + 1500)) || fail "took $ms ms (bound: liveness 5 s + poll 2 s + tick)"
[[ $(sql "select json_extract(data, '\$.why') from events where kind='agent_disconnected' and agent_id='hangs'") == silent* ]] ||
	fail "reason"
ok "a hung agent is disconnected within the liveness bound ($ms ms)"
kill -CONT "${PIDS[hangs]}"
wait_for 20 is_state hangs connected || fail "the hung agent did not come back"
agent_start dies
wait_for 20 is_state dies connected || fail "the restarted agent did not come back"
seen=$(agents_json | jq -r '.[] | select(.id == "dies") | .last_seen_ms')
(($(date +%s%3N) - seen < 10000)) || fail "last_seen_ms is stale: $seen"
ok "both come back as connected, with a fresh last_seen_ms"
echo "$TEST_NAME: all $PASSED checks passed"
