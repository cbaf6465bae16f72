#!/usr/bin/env bash
# agent_exec.sh: the exec driver through the real drover-agent: start (files,
# env, chroot), stop (SIGTERM, then SIGKILL after the grace), crash-loop
# throttling, re-adoption after an agent restart (and restart of a service
# that died while no agent ran), log rotation, and kill -9 of the agent in
# the middle of a switch: the next agent reports what really runs.
TEST_NAME=agent_exec
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
setup_registry

mkimage_berry "$TMP/oci" berry 1.0.0 || fail "mkimage 1.0.0"
mkimage_berry "$TMP/oci" berry 2.0.0 || fail "mkimage 2.0.0"
D1=$(mkimage_push "$TMP/oci" 1.0.0 "$REG_PORT" berrys/berry)
D2=$(mkimage_push "$TMP/oci" 2.0.0 "$REG_PORT" berrys/berry)
PORT=$(pick_port)
URL=http://127.0.0.1:$PORT
stop_on_exit berry
svc_pid() { cut -d' ' -f1 "$AGENT_DIR/state/run/berry.pid" 2>/dev/null; }

files='{"files":{"/etc/berrys/flags.json":"{\"new_planner\": true}"},"env":{"BERRY_ERROR_RATE":"0.25"}}'
run_step s1 "$(svc_json s1 start berry 1.0.0 "$D1" "$PORT" "$files")" --insecure-registry ||
	fail "start 1.0.0: $(final s1)"
[[ $(http_body "$URL/version") == 1.0.0 && $(http_body "$URL/error_rate") == 0.25 ]] ||
	fail "1.0.0 not serving with its env"
root=$AGENT_DIR/releases/berry/${D1#sha256:}/rootfs
[[ $(cat "$root/etc/berrys/flags.json") == '{"new_planner": true}' ]] || fail "files not written into the release"
[[ $(rel s1 .state) == running && $(rel s1 .healthy) == true ]] || fail "s1 release: $(final s1)"
pid1=$(svc_pid)
[[ $(readlink "/proc/$pid1/cwd") == "$root" ]] || fail "cwd is not the release root"
ok "start: release root cwd, env and files from the instruction, healthy (pid $pid1)"

# Re-adoption: a new agent process finds the running service by pid file + start time.
"$AGENT" run-step --status --dir "$AGENT_DIR" >"$TMP/st1.out" 2>"$TMP/st1.err" || fail "status"
grep -q "re-adopted a running service" "$TMP/st1.err" || fail "no re-adoption logged"
has "$TMP/st1.out" '.result == "releases" and .releases[0].state == "running" and .releases[0].version == "1.0.0"' ||
	fail "status after restart: $(cat "$TMP/st1.out")"
[[ $(svc_pid) == "$pid1" ]] || fail "service restarted instead of re-adopted"
ok "a restarted agent re-adopts the running service (same pid)"

# The service dies while no agent runs: the next agent tells the truth and starts it again.
kill -KILL "$pid1"
wait_for 5 bash -c "! kill -0 $pid1" || fail "service did not die"
"$AGENT" run-step --status --dir "$AGENT_DIR" --watch 1500 >"$TMP/st2.out" 2>"$TMP/st2.err" || fail "status 2"
has "$TMP/st2.out" '.result == "status" and (.message | test("was not running"))' ||
	fail "no report that the service was not running: $(cat "$TMP/st2.out")"
pid2=$(svc_pid)
[[ -n $pid2 && $pid2 != "$pid1" ]] && kill -0 "$pid2" || fail "service not started again"
wait_for 5 test "$(http_body "$URL/version")" = 1.0.0 || fail "service not serving after restart"
ok "a service that died while the agent was down is reported and started again"

# Stop: SIGTERM first (berry-svc exits 0 on it).
run_step x1 "$(simple_json x1 stop berry)" || fail "stop"
wait_for 5 bash -c "! kill -0 $pid2" || fail "still running after stop"
[[ $(rel x1 .state) == stopped && -z $(http_body "$URL/version") ]] || fail "stop: $(final x1)"
grep -q "GET /version" "$AGENT_DIR/log/services/berry.log" || fail "service log missing"
ok "stop: the process is gone, state stopped, stdout was in log/services/berry.log"

# A process that does not act on SIGTERM (stopped) is killed after the grace period.
trap_cmd='{"stop_grace_ms":700}'
run_step s2 "$(svc_json s2 start berry 1.0.0 "$D1" "$PORT" "$trap_cmd")" --insecure-registry || fail "restart"
p=$(svc_pid)
kill -STOP "$p" # a stopped process cannot act on SIGTERM
t0=$(date +%s%N)
run_step x2 "$(simple_json x2 stop berry)" || fail "stop 2"
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q "ignored SIGTERM, sending SIGKILL" "$TMP/x2.err" || fail "no SIGKILL after the grace"
wait_for 5 gone "$p" || fail "process survived SIGKILL"
ok "stop escalates to SIGKILL after the grace period ($ms ms)"

# Chroot isolation: the service sees the release root as /.
run_step s3 "$(svc_json s3 start berry 1.0.0 "$D1" "$PORT" '{"isolation":"chroot"}')" --insecure-registry ||
	fail "chroot start: $(final s3)"
[[ $(readlink "/proc/$(svc_pid)/root") == "$root" ]] || fail "not chrooted"
[[ $(http_body "$URL/version") == 1.0.0 ]] || fail "chrooted service not serving"
ok "isolation: chroot runs the service with the release as its root"

# Crash loop: a version that exits 3 at once is throttled and the start fails.
run_step s4 "$(svc_json s4 start berry 2.0.0 "$D2" "$PORT" '{"env":{"BERRY_CRASH_AFTER_MS":"100"}}')" \
	--insecure-registry && fail "crashing version started successfully"
[[ $(field s4 .message) == *"crash-looping"* ]] || fail "crash loop not detected: $(final s4)"
has "$TMP/s4.out" '.result == "status" and (.message | test("crash loop"))' || fail "no crash-loop report"
n=$(grep -c "service exited" "$TMP/s4.err")
((n >= 3 && n <= 6)) || fail "$n restarts: not throttled"
grep -q "restart_in_ms=2000" "$TMP/s4.err" || fail "no growing back-off"
ok "crash loop: $n quick exits with growing back-off, reported, start failed"

# Roll back to 1.0.0 (the previous release) and check it serves again.
run_step r1 "$(simple_json r1 activate_previous berry)" || fail "rollback: $(final r1)"
[[ $(http_body "$URL/version") == 1.0.0 && $(rel r1 .previous_version) == 2.0.0 ]] || fail "rollback: $(final r1)"
ok "activate_previous after the crash loop: 1.0.0 serves again"

# Log rotation: a small cap, many requests.
run_step s5 "$(svc_json s5 start berry 2.0.0 "$D2" "$PORT")" --insecure-registry --log-max-bytes 2000 --watch 100 ||
	fail "start 2.0.0: $(final s5)"
"$AGENT" run-step --status --dir "$AGENT_DIR" --log-max-bytes 2000 --watch 2000 >/dev/null 2>&1 &
wpid=$!
at_exit "kill $wpid"
for ((i = 0; i < 100; i++)); do http_body "$URL/version" >/dev/null; done
wait "$wpid" || true
log=$AGENT_DIR/log/services/berry.log
[[ -f $log.1 && $(stat -c %s "$log.1") -ge 2000 ]] || fail "log not rotated"
((i = $(stat -c %s "$log"), i < 20000)) || fail "log not truncated ($i bytes)"
ok "service log rotated at the size cap (berry.log.1 exists, berry.log restarted)"

# kill -9 of the agent in the middle of a switch: the new version starts slowly,
# the agent dies during the health gate; the next agent must not claim success.
json=$(svc_json s6 start berry 1.0.0 "$D1" "$PORT" '{"env":{"BERRY_START_DELAY_MS":"3000"}}')
printf '%s\n' "$json" >"$TMP/s6.json"
"$AGENT" run-step "$TMP/s6.json" --dir "$AGENT_DIR" --insecure-registry >"$TMP/s6.out" 2>"$TMP/s6.err" &
apid=$!
at_exit "kill -9 $apid"
wait_for 10 grep -q "service started" "$TMP/s6.err" || fail "switch never started the new version"
kill -9 "$apid"
wait "$apid" 2>/dev/null || true
! has "$TMP/s6.out" '.result == "succeeded"' || fail "the killed agent reported success"
"$AGENT" run-step --status --dir "$AGENT_DIR" >"$TMP/after.out" 2>"$TMP/after.err" || fail "status after kill"
has "$TMP/after.out" '.step_id == "s6" and .result == "failed" and (.message | test("interrupted"))' ||
	fail "interrupted switch not reported failed: $(cat "$TMP/after.out")"
has "$TMP/after.out" '.result == "releases" and .releases[0].version == "1.0.0" and .releases[0].state == "running"' ||
	fail "releases after kill -9: $(cat "$TMP/after.out")"
run_step s6b "$json" --insecure-registry && fail "resending the interrupted step reported success"
ok "kill -9 mid-switch: step reported failed (interrupted), releases show what really runs"

echo "$TEST_NAME: $PASSED passed, 0 failed"
