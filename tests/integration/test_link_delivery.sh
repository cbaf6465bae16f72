#!/usr/bin/env bash
# Delivery: instructions reach a waiting poll at once, run once, are
# acknowledged (the queue says acked), sequence numbers grow per agent, the
# same step id queued twice is one instruction, and several agents work in
# parallel. drover agents --json lists them as connected.
TEST_NAME=link_delivery
source "$(dirname "$0")/link_lib.sh"

coord_init --enroll-token
coord_start
for a in a1 a2 a3; do
	agent_init $a --enroll-token-file "$COORD/enroll.token"
	agent_start $a
done
all_connected() { [[ $(agents_json | jq '[.[] | select(.state == "connected")] | length') == 3 ]]; }
wait_for 30 all_connected || fail "agents not connected: $(agents_json)"
ok "three agents connected"

# every agent is holding a poll now: an instruction must arrive at once
sleep_until_parked() { [[ $(coord_stat .polls) -ge 3 ]]; }
wait_for 20 sleep_until_parked || fail "no polls"
reply=$(instruct a1 s1 /bin/sh -c "echo s1 >> $TMP/a1.out")
[[ $(jq -r .seq <<<"$reply") == 1 && $(jq -r .queued <<<"$reply") == true ]] || fail "queue: $reply"
wait_for 10 has_lines "$TMP/a1.out" 1 || fail "s1 did not run"
# from the coordinator's "queued" to the agent's "applied", by the logs' clocks
log_ms() { date -d "$(grep -m1 "$2" "$1" | sed -E 's/^ts=([^ ]+) .*/\1/')" +%s%3N; }
ms=$(($(log_ms "$TMP/a1.log" 'instruction applied.*step=s1') - $(log_ms "$TMP/coord.log" 'instruction queued.*step=s1')))
((ms < 1000)) || fail "delivery took $ms ms (poll timeout is 2 s: it was not immediate)"
ok "an instruction reaches the waiting agent at once ($ms ms)"

acked() { [[ $(sql "select state from instructions where agent_id='$1' and seq=$2") == acked ]]; }
wait_for 20 acked a1 1 || fail "s1 not acknowledged: $(sql 'select * from instructions')"
ok "the instruction is acknowledged"

reply=$(instruct a1 s1 /bin/sh -c "echo s1 >> $TMP/a1.out")
[[ $(jq -r .seq <<<"$reply") == 1 && $(jq -r .queued <<<"$reply") == false ]] ||
	fail "same step id queued twice: $reply"
reply=$(instruct a1 s2 /bin/sh -c "echo s2 >> $TMP/a1.out")
[[ $(jq -r .seq <<<"$reply") == 2 ]] || fail "seq did not grow: $reply"
for a in a2 a3; do
	for i in 1 2 3; do
		instruct $a "$a-$i" /bin/sh -c "echo $a-$i >> $TMP/$a.out" >/dev/null
	done
done
wait_for 30 has_lines "$TMP/a1.out" 2 || fail "a1: $(cat "$TMP/a1.out")"
wait_for 30 has_lines "$TMP/a2.out" 3 || fail "a2: $(cat "$TMP/a2.out" 2>/dev/null)"
wait_for 30 has_lines "$TMP/a3.out" 3 || fail "a3: $(cat "$TMP/a3.out" 2>/dev/null)"
[[ $(sort "$TMP/a2.out" | tr '\n' ' ') == "a2-1 a2-2 a2-3 " ]] || fail "a2 ran $(cat "$TMP/a2.out")"
wait_for 20 acked a3 3 || fail "a3 seq 3 not acknowledged"
[[ $(sql "select count(*) from instructions where state != 'acked'") == 0 ]] ||
	fail "unacknowledged: $(sql "select agent_id, seq, state from instructions where state != 'acked'")"
ok "per-agent sequences, idempotent queueing by step id, every instruction ran once and is acked"

# results come back as reports (events), and a failing hook is reported failed
instruct a2 bad /bin/sh -c 'exit 3' >/dev/null
reported() { [[ $(sql "select count(*) from events where kind='report' and agent_id='$1' and json_extract(data, '\$.step_id')='$2' and json_extract(data, '\$.result')='$3'") -ge 1 ]]; }
wait_for 20 reported a2 bad failed || fail "failure not reported"
[[ $(sql "select json_extract(data, '\$.exit_code') from events where kind='report' and json_extract(data, '\$.step_id')='bad' and json_extract(data, '\$.result')='failed'") == 3 ]] ||
	fail "exit code not reported"
wait_for 20 reported a1 s2 succeeded || fail "success not reported"
ok "reports carry the results (succeeded, failed with the exit code)"

# the API lists agents as connected, with their sequence numbers
[[ $(agents_json | jq -r '.[] | select(.id == "a1") | "\(.state) \(.next_seq) \(.acked_seq)"') == "connected 3 2" ]] ||
	fail "agents --json: $(agents_json | jq -c '.[] | select(.id == "a1")')"
"$CLI" agents | grep -q '^a1 *connected' || fail "drover agents table"
ok "drover agents --json lists accepted agents as connected, with next and acked sequence"

# validation of the debug endpoint
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
	--data '{"step_id": "x", "run": [], "bogus": 1}' "$DROVER_ADDR/v1/agents/a1/instructions")
[[ $code == 400 && $(jq -r .error.field "$TMP/body") == bogus ]] || fail "bad body: $code $(cat "$TMP/body")"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
	--data '{"step_id": "x", "run": ["/bin/true"]}' "$DROVER_ADDR/v1/agents/nosuch/instructions")
[[ $code == 404 ]] || fail "unknown agent: $code"
ok "bad requests get a 4xx with a JSON error naming the field"

# the offline tool queues too, and the running daemon delivers within a tick
"$DROVERD" queue --config "$COORD/droverd.yaml" --agent a3 --step offline -- \
	/bin/sh -c "echo offline >> $TMP/a3.out" >/dev/null || fail "droverd queue"
wait_for 20 has_lines "$TMP/a3.out" 4 || fail "droverd queue: not delivered"
ok "droverd queue (offline debug tool) is delivered by the running daemon"
echo "$TEST_NAME: all $PASSED checks passed"
