#!/usr/bin/env bash
# Valgrind: droverd and drover-agent, each under valgrind (memcheck), over an
# enroll / deliver / disconnect cycle, plus the hostile probe against droverd
# so the refusal paths run too. Both must exit cleanly with no memory error
# and no definite or indirect leak. The command is recorded in
# docs/security.md ("Memory safety checks").
TEST_NAME=link_valgrind
source "$(dirname "$0")/link_lib.sh"

if ! command -v valgrind >/dev/null; then
	echo "SKIPPED $TEST_NAME: valgrind is not installed (make deps installs it)" >&2
	exit 77
fi
vg() {
	echo valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
		--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
		--track-origins=yes --num-callers=30 --log-file="$TMP/valgrind-$1.txt"
}
read -r -a COORD_WRAP <<<"$(vg droverd)"
read -r -a AGENT_WRAP <<<"$(vg agent)"
COORD_START_SECS=240

coord_init --enroll-token
set_opt "$COORD/droverd.yaml" liveness_timeout 30s # valgrind is slow: no false disconnects
coord_start
agent_init a1 --enroll-token-file "$COORD/enroll.token"
set_opt "$TMP/a1/agent.yaml" request_timeout 20s
agent_start a1
wait_for 120 is_state a1 connected || fail "the agent under valgrind did not enroll"
ok "enrolled with both daemons under valgrind"

instruct a1 v1 /bin/sh -c "echo v1 >> $TMP/a1.out" >/dev/null
wait_for 120 has_lines "$TMP/a1.out" 1 || fail "v1 did not run"
acked() { [[ $(sql "select state from instructions where agent_id='a1' and step_id='v1'") == acked ]]; }
wait_for 60 acked || fail "v1 not acknowledged"
reported() { [[ $(sql "select count(*) from events where kind='report' and json_extract(data, '\$.step_id')='v1' and json_extract(data, '\$.result')='succeeded'") -ge 1 ]]; }
wait_for 60 reported || fail "v1 result not reported"
"$PROBE" attack --url "$LINK_URL" --agent-id a1 --agent-key "$TMP/a1/agent.key" \
	>"$TMP/attack.log" 2>&1 || fail "attack: $(cat "$TMP/attack.log")"
ok "delivered, acknowledged, reported; hostile messages refused"

pid=${PIDS[a1]}
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
unset "PIDS[a1]"
((rc == 0)) || fail "drover-agent under valgrind exited $rc: $(grep -A3 -E 'definitely|indirectly|Invalid|uninitialised' "$TMP/valgrind-agent.txt" | head -40)"
wait_for 60 is_state a1 disconnected || fail "disconnect not noticed"
ok "drover-agent: clean exit, no leak, no memory error"

kill -TERM "$COORD_PID"
rc=0
wait "$COORD_PID" || rc=$?
COORD_PID=
((rc == 0)) || fail "droverd under valgrind exited $rc: $(grep -A3 -E 'definitely|indirectly|Invalid|uninitialised' "$TMP/valgrind-droverd.txt" | head -40)"
for f in droverd agent; do
	grep -q 'ERROR SUMMARY: 0 errors' "$TMP/valgrind-$f.txt" || fail "$f: $(tail -5 "$TMP/valgrind-$f.txt")"
	sed -n '/HEAP SUMMARY/,/ERROR SUMMARY/p' "$TMP/valgrind-$f.txt" | sed "s/^==[0-9]*==/    $f:/"
done
ok "droverd: clean exit, no leak, no memory error"
echo "$TEST_NAME: all $PASSED checks passed"
