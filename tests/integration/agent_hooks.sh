#!/usr/bin/env bash
# agent_hooks.sh: RUN_HOOK through the real drover-agent (run-step): exit
# codes, output tail, env, timeout kills the whole process group, step-id
# idempotency, and a hook running when the agent is killed -9 is reported
# failed (and its orphan killed) by the next agent. A hook runs as root
# unless it names a user; with one it has no capabilities and no_new_privs.
TEST_NAME=agent_hooks
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"

hook() { # STEP RUN_JSON_ARRAY [ENV_JSON] [TIMEOUT_MS]
	printf '{"action":"run_hook","step_id":"%s","deployment_id":"d1","seq":1,"hook":{"name":"h-%s","run":%s,"env":%s,"timeout_ms":%s}}' \
		"$1" "$1" "$2" "${3:-{\}}" "${4:-10000}"
}

run_step ok "$(hook ok '["sh","-c","echo hello from $GREETING; echo to-stderr >&2"]' '{"GREETING":"drover"}')" ||
	fail "successful hook: run-step exited non-zero"
[[ $(field ok .exit_code) == 0 && $(field ok .result) == succeeded ]] || fail "ok: $(final ok)"
[[ $(field ok '.output_tail == "hello from drover\nto-stderr\n"') == true ]] || fail "ok tail: $(field ok .output_tail)"
has "$TMP/ok.out" '.result == "accepted"' || fail "no accepted report"
[[ $(cat "$AGENT_DIR"/log/hooks/h-ok-ok.log) == *"hello from drover"* ]] || fail "hook log file missing"
ok "hook succeeds, env passed, stdout+stderr in the tail and the log file"

rc=0
run_step bad "$(hook bad '["sh","-c","echo partial; exit 7"]')" || rc=$?
[[ $rc == 1 && $(field bad .exit_code) == 7 && $(field bad .result) == failed ]] || fail "bad: rc=$rc $(final bad)"
[[ $(field bad .message) == *"exited with status 7"* ]] || fail "bad message: $(field bad .message)"
ok "failing hook: exit code 7 reported, step failed"

rc=0
run_step missing "$(hook missing '["/nonexistent/tool","x"]')" || rc=$?
[[ $rc == 1 && $(field missing .message) == *"cannot run /nonexistent/tool"* ]] || fail "missing: $(final missing)"
ok "missing command: clear error"

# Who a hook runs as: root by default (backups, migrations), else its user.
ids='["sh","-c","id -un; id -Gn; grep -E \"^(CapEff|NoNewPrivs):\" /proc/self/status"]'
run_step asroot "$(hook asroot "$ids")" || fail "root hook: $(final asroot)"
mycaps=$(grep '^CapEff:' /proc/$$/status) # what the agent (our child) has
[[ $(field asroot .output_tail) == root$'\n'*"$mycaps"$'\nNoNewPrivs:\t0'* ]] ||
	fail "default hook, want root with $mycaps: $(field asroot .output_tail)"
json=$(hook asuser "$ids" | jq -c '.hook.user = "drover-svc"')
run_step asuser "$json" || fail "hook as drover-svc: $(final asuser)"
out=$(field asuser .output_tail)
[[ $out == $'drover-svc\ndrover-svc\nCapEff:\t0000000000000000\nNoNewPrivs:\t1' ]] ||
	fail "hook as drover-svc: $out"
json=$(hook nouser '["true"]' | jq -c '.hook.user = "no-such-user-here"')
run_step nouser "$json" && fail "a hook as an unknown user ran"
[[ $(field nouser .message) == *"user 'no-such-user-here' does not exist"* ]] || fail "nouser: $(final nouser)"
ok "hooks run as root by default, as their user (no capabilities, no_new_privs, only its group) when named"

# Output longer than the tail: the report keeps the last 4096 bytes.
run_step big "$(hook big '["sh","-c","i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done"]')" ||
	fail "big output hook failed"
tail_len=$(field big '.output_tail | length')
[[ $tail_len -le 4096 && $tail_len -ge 4000 && $(field big .output_tail) == *line-2999* ]] ||
	fail "tail is $tail_len bytes or lacks the last line"
ok "output tail truncated to the last $tail_len bytes"

# Timeout: the hook and its background child are both killed.
t0=$(date +%s%N)
rc=0
run_step slow "$(hook slow '["sh","-c","sleep 300 & echo $! > '"$TMP"'/child.pid; sleep 300"]' '{}' 700)" || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[[ $rc == 1 && $(field slow .message) == *"timed out after 700 ms"* ]] || fail "slow: $(final slow)"
((ms < 8000)) || fail "timeout took $ms ms"
child=$(cat "$TMP/child.pid")
wait_for 5 bash -c "! kill -0 $child" || fail "the hook's background child $child survived the timeout"
ok "timeout after 700 ms kills the hook's process group (took $ms ms)"

# Idempotency: the same step id again reports the recorded result, does not re-run.
run_step ok2 "$(hook ok '["sh","-c","echo SHOULD-NOT-RUN; exit 1"]')" || fail "replayed step id failed"
[[ $(field ok2 .output_tail) == *"hello from drover"* ]] || fail "replay ran the step again: $(final ok2)"
! has "$TMP/ok2.out" '.result == "accepted"' || fail "replay was accepted as new"
ok "a finished step id is not run again; its recorded result is reported"

# kill -9 of the agent while a hook runs.
printf '%s\n' "$(hook dying '["sh","-c","echo started; sleep 300"]' '{}' 600000)" >"$TMP/dying.json"
"$AGENT" run-step "$TMP/dying.json" --dir "$AGENT_DIR" >"$TMP/dying.out" 2>"$TMP/dying.err" &
apid=$!
at_exit "kill -9 $apid"
wait_for 10 test -s "$AGENT_DIR/state/hooks/dying.pid" || fail "hook never started"
hpid=$(cut -d' ' -f1 "$AGENT_DIR/state/hooks/dying.pid")
kill -9 "$apid"
wait "$apid" 2>/dev/null || true
kill -0 "$hpid" || fail "hook died with the agent (test premise)"
"$AGENT" run-step --status --dir "$AGENT_DIR" >"$TMP/restart.out" 2>"$TMP/restart.err" || fail "restart"
has "$TMP/restart.out" '.step_id == "dying" and .result == "failed" and (.message | test("interrupted"))' || fail "restarted agent did not report the hook failed: $(cat "$TMP/restart.out")"
wait_for 10 bash -c "! kill -0 $hpid" || fail "orphan hook $hpid still running after restart"
run_step dying2 "$(hook dying '["true"]')" && fail "resent interrupted step reported success"
[[ $(field dying2 .result) == failed ]] || fail "resent interrupted step: $(final dying2)"
ok "kill -9 during a hook: next agent reports it failed, kills the orphan, resend stays failed"

echo "$TEST_NAME: $PASSED passed, 0 failed"
