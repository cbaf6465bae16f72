#!/usr/bin/env bash
# Restarts: the coordinator restarted (SIGTERM and SIGKILL) while agents stay
# up: they reconnect and nothing runs twice. An agent restarted (SIGTERM and
# SIGKILL): its applied sequence survives, queued work waits for it and runs
# once. A step re-queued under a new sequence number (a database restored
# from an old backup) is acknowledged without running again, and a
# coordinator whose sequence fell behind the agent's catches up.
TEST_NAME=link_restart
source "$(dirname "$0")/link_lib.sh"

coord_init --enroll-token
coord_start
for a in a1 a2; do
	agent_init $a --enroll-token-file "$COORD/enroll.token"
	agent_start $a
done
both_connected() { is_state a1 connected && is_state a2 connected; }
wait_for 30 both_connected || fail "agents not connected: $(agents_json)"
acked() { [[ $(sql "select state from instructions where agent_id='$1' and step_id='$2'") == acked ]]; }
run_everywhere() {
	local step=$1 a
	for a in a1 a2; do
		instruct $a "$step" /bin/sh -c "echo $step >> $TMP/$a.out" >/dev/null
	done
	for a in a1 a2; do
		wait_for 30 acked $a "$step" || fail "$step not acked on $a"
	done
}
# exactly: FILE holds exactly these lines, in this order
exactly() { [[ $(tr '\n' ' ' <"$1") == "$2" ]] || fail "$1 holds '$(tr '\n' ' ' <"$1")', want '$2'"; }
settle() { sleep "${1:-1}"; } # only to give a wrong re-execution the chance to show

run_everywhere s1
wait_for 20 has_lines "$TMP/a2.out" 1 || fail "s1 did not run"
ok "s1 ran on both agents"

coord_stop TERM
coord_start
wait_for 30 both_connected || fail "agents did not reconnect after SIGTERM: $(agents_json)"
ok "agents reconnect after the coordinator restarted (SIGTERM)"
run_everywhere s2
wait_for 20 has_lines "$TMP/a1.out" 2 || fail "s2 did not run"

coord_stop KILL
coord_start
wait_for 30 both_connected || fail "agents did not reconnect after SIGKILL: $(agents_json)"
ok "agents reconnect after the coordinator was killed (SIGKILL)"
run_everywhere s3
wait_for 20 has_lines "$TMP/a2.out" 3 || fail "s3 did not run"
settle
exactly "$TMP/a1.out" "s1 s2 s3 "
exactly "$TMP/a2.out" "s1 s2 s3 "
ok "nothing ran twice across coordinator restarts"

# a database restored from an old backup: the row of s3 is gone and a2's
# next sequence number went back to 1
coord_stop TERM
sql "delete from instructions where agent_id='a1' and step_id='s3'; update agents set next_seq=1 where id='a2'"
coord_start
wait_for 30 both_connected || fail "agents did not reconnect"
before=$(agent_stat a1 .instructions_duplicate)
reply=$(instruct a1 s3 /bin/sh -c "echo s3 >> $TMP/a1.out")
[[ $(jq -r .seq <<<"$reply") == 4 ]] || fail "re-queued s3: $reply"
wait_for 20 acked a1 s3 || fail "re-queued s3 not acknowledged"
wait_for 10 agent_stat_at_least a1 .instructions_duplicate $((before + 1)) || fail "not counted as duplicate"
reply=$(instruct a2 s4 /bin/sh -c "echo s4 >> $TMP/a2.out")
[[ $(jq -r .seq <<<"$reply") == 4 ]] || fail "a2's sequence did not catch up with the agent: $reply"
wait_for 20 has_lines "$TMP/a2.out" 4 || fail "s4 did not run on a2"
settle
exactly "$TMP/a1.out" "s1 s2 s3 "
ok "a step re-queued under a new sequence is acknowledged, not run again; a sequence that fell behind catches up"

# agent restarts: the applied sequence survives
applied() { jq -r .applied_seq "$TMP/$1/state/link.json"; }
[[ $(applied a1) == 4 ]] || fail "a1 applied $(applied a1)"
agent_stop a1 TERM
[[ $(applied a1) == 4 ]] || fail "a1 lost its sequence on SIGTERM"
instruct a1 s5 /bin/sh -c "echo s5 >> $TMP/a1.out" >/dev/null
wait_for 20 is_state a1 disconnected || fail "a1 not seen disconnected"
[[ $(lines "$TMP/a1.out") == 3 ]] || fail "ran while the agent was down?"
agent_start a1
wait_for 30 has_lines "$TMP/a1.out" 4 || fail "s5 did not run after the agent restarted"
wait_for 20 acked a1 s5 || fail "s5 not acked"
[[ $(applied a1) == 5 ]] || fail "a1 applied $(applied a1), want 5"
ok "agent restarted (SIGTERM): its sequence survived; work queued meanwhile ran once"

agent_stop a2 KILL
[[ $(applied a2) == 4 ]] || fail "a2 lost its sequence on SIGKILL"
agent_start a2
wait_for 30 is_state a2 connected || fail "a2 did not come back"
run_everywhere s6
wait_for 20 has_lines "$TMP/a2.out" 5 || fail "s6 did not run on a2"
settle
exactly "$TMP/a1.out" "s1 s2 s3 s5 s6 "
exactly "$TMP/a2.out" "s1 s2 s3 s4 s6 "
[[ $(applied a2) == 5 ]] || fail "a2 applied $(applied a2), want 5"
ok "agent killed (SIGKILL): its sequence survived; nothing ran twice"
# a link state file from before agent.db held every step: its steps move
# into agent.db once (the file keeps only its sequences); a step of it sent
# again is acknowledged with its old result, not run
agent_stop a2 TERM
jq -c '.steps = [{"seq": 2, "step_id": "old-refused", "deployment_id": "d", "result": 4,
	"exit_code": -1, "message": "refused: expired"}]' "$TMP/a2/state/link.json" >"$TMP/old.json"
install -m 600 "$TMP/old.json" "$TMP/a2/state/link.json"
agent_start a2
wait_for 30 is_state a2 connected || fail "a2 did not come back with an old link state"
[[ $(jq -r 'has("steps")' "$TMP/a2/state/link.json") == false ]] || fail "steps still in link.json"
row=$(sqlite3 -cmd '.timeout 5000' "$TMP/a2/state/agent.db" \
	"select seq || ' ' || status || ' ' || exit_code || ' ' || message from steps where step_id = 'old-refused'")
[[ $row == "2 3 -1 refused: expired" ]] || fail "old step not in agent.db: '$row'"
before=$(agent_stat a2 .instructions_duplicate)
instruct a2 old-refused /bin/sh -c "echo old >> $TMP/a2.out" >/dev/null
wait_for 20 acked a2 old-refused || fail "old step sent again not acknowledged"
wait_for 10 agent_stat_at_least a2 .instructions_duplicate $((before + 1)) || fail "not a duplicate"
settle
exactly "$TMP/a2.out" "s1 s2 s3 s4 s6 "
ok "an old link state's steps moved into agent.db: one record of each step; a resent one did not run"
echo "$TEST_NAME: all $PASSED checks passed"
