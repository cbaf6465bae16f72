#!/usr/bin/env bash
# Liveness: an agent that dies is disconnected as soon as its connection
# closes; an agent that hangs (SIGSTOP) is disconnected within the liveness
# timeout (5 s here, 2 x poll timeout by default) plus one tick; both come
# back as connected when they return.
TEST_NAME=link_liveness
source "$(dirname "$0")/link_lib.sh"

coord_init --enroll-token
sed -i -E "s|^( *)# file:\$|\1file: \"$TMP/droverd-file.log\"|" "$COORD/droverd.yaml"
grep -q "file: \"$TMP/droverd-file.log\"" "$COORD/droverd.yaml" || fail "cannot set log.file"

# --check: a broken configuration is refused with file:line, all errors at once
cp "$COORD/droverd.yaml" "$TMP/bad.yaml"
printf 'link:\n  poll_timeout: forever\nlisten: [ftp://x]\ncolour: blue\n' >>"$TMP/bad.yaml"
rc=0
"$DROVERD" --config "$TMP/bad.yaml" --check 2>"$TMP/check.err" || rc=$?
((rc == 2)) || fail "droverd --check on a bad file: exit $rc"
grep -qE "bad.yaml:[0-9]+: link.poll_timeout: set twice" "$TMP/check.err" &&
	grep -qE "bad.yaml:[0-9]+: unknown option 'colour'" "$TMP/check.err" ||
	fail "check errors: $(cat "$TMP/check.err")"
"$DROVERD" --config "$COORD/droverd.yaml" --check >/dev/null || fail "droverd --check on a good file"
ok "droverd --check: file:line errors, all of them; a good file passes"
coord_start
for a in dies hangs; do
	agent_init $a --enroll-token-file "$COORD/enroll.token"
	agent_start $a
done
both() { is_state dies connected && is_state hangs connected; }
wait_for 30 both || fail "agents not connected: $(agents_json)"
ok "both agents connected"

# when droverd noticed, by its own event clock (the test's polling adds load noise)
noticed_ms() { sql "select at_ms from events where kind='agent_disconnected' and agent_id='$1' order by id desc limit 1"; }
start=$(date +%s%3N)
agent_stop dies KILL
wait_for 20 is_state dies disconnected || fail "a killed agent is still connected"
ms=$(($(noticed_ms dies) - start))
((ms < 3000)) || fail "took $ms ms to notice a closed connection"
[[ $(sql "select json_extract(data, '\$.why') from events where kind='agent_disconnected' and agent_id='dies'") == "connection closed" ]] ||
	fail "reason"
ok "a killed agent is disconnected when its connection closes ($ms ms)"

kill -STOP "${PIDS[hangs]}"
start=$(date +%s%3N)
wait_for 30 is_state hangs disconnected || fail "a hung agent stayed connected"
ms=$(($(noticed_ms hangs) - start))
((ms <= 5000 + 1000 + 500)) || fail "took $ms ms (bound: liveness 5 s after its last poll, + tick)"
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
"$AGENT" --config "$TMP/dies/agent.yaml" --check >/dev/null || fail "drover-agent --check"
sed 's/^id:.*/id: "bad id!"/' "$TMP/dies/agent.yaml" >"$TMP/bad-agent.yaml"
rc=0
"$AGENT" --config "$TMP/bad-agent.yaml" --check 2>"$TMP/check.err" || rc=$?
((rc == 2)) && grep -qE "bad-agent.yaml:[0-9]+: id:" "$TMP/check.err" ||
	fail "drover-agent --check on a bad id: exit $rc $(cat "$TMP/check.err")"
ok "drover-agent --check"

# SIGHUP reopens the log file (after rotation)
wait_for 10 test -s "$TMP/droverd-file.log" || fail "droverd does not log to log.file"
mv "$TMP/droverd-file.log" "$TMP/droverd-file.log.1"
kill -HUP "$COORD_PID"
wait_for 10 test -s "$TMP/droverd-file.log" || fail "no new log file after SIGHUP"
grep -q "reopening the log file" "$TMP/droverd-file.log.1" || fail "SIGHUP not logged"
kill -0 "$COORD_PID" || fail "droverd died on SIGHUP"
ok "SIGHUP reopens droverd's log file"
coord_stop TERM
grep -q 'msg="stopped"' "$TMP/droverd-file.log" || fail "no clean stop on SIGTERM"
ok "SIGTERM stops droverd cleanly"
echo "$TEST_NAME: all $PASSED checks passed"
