#!/usr/bin/env bash
# agent_orphans.sh (it_agent_orphans): the two agent weaknesses behind
# e2e_fault_agents' failure under load (docs/reliability.md), each with real
# processes:
#
#   1. an agent SIGKILLed in the middle of the launch of a service process
#      (DROVER_TEST_DIE_AT: right after the fork, before the pid file; and
#      after the pid file, before the child may exec) leaves no service
#      process that no pid file names: after a restart and the START again,
#      exactly one process serves, the one the pid file names, and a STOP
#      leaves none;
#   2. a START whose process exits because a process the agent does not run
#      holds its port fails with the process's own error ("Address already
#      in use"), although the health check on that port passes.
#
# ORPHAN_POINTS="" (or one point) runs a part, when reproducing.
TEST_NAME=agent_orphans
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
setup_berry
# svc_procs: the berry service processes on $PORT, whoever started them.
svc_procs() { pgrep -f -- "berry-svc --name berry --port $PORT --listen-addr" || true; }
# serves VERSION: what answers on $PORT says VERSION (a function: wait_for
# must ask again each time).
serves() { [[ $(http_body "$URL/version") == "$1" ]]; }
no_procs() { [[ -z $(svc_procs) ]]; }
# An orphan is what this test is about: never leave one behind.
at_exit 'for p in $(svc_procs); do kill -9 "$p"; done'

for point in ${ORPHAN_POINTS-spawned pidfile}; do
	run_step "a-$point" "$(svc_json "a-$point" start berry 1.0.0 "$D1" "$PORT")" --insecure-registry ||
		fail "start 1.0.0: $(final "a-$point")"
	v1=$(svc_pid)
	[[ -n $v1 && $(svc_procs) == "$v1" ]] || fail "before: processes '$(svc_procs)', pid file '$v1'"

	# The START of 2.0.0 under an agent that kills itself in the launch.
	rc=0
	DROVER_TEST_DIE_AT=$point run_step "k-$point" \
		"$(svc_json "k-$point" start berry 2.0.0 "$D2" "$PORT")" --insecure-registry || rc=$?
	[[ $rc == 137 ]] || fail "$point: the agent was not killed in the launch (exit $rc): $(final "k-$point")"
	grep -q "point=$point" "$TMP/k-$point.err" || fail "$point: the agent did not die at its point"
	wait_for 10 gone "$v1" || fail "$point: 1.0.0 still runs after the START stopped it"

	# The restarted agent takes over (re-adopts, or starts again), then
	# gets the START again (as droverd resends it or the agent resumes it).
	"$AGENT" run-step --status --dir "$AGENT_DIR" --watch 1500 >"$TMP/w-$point.out" 2>"$TMP/w-$point.err" ||
		fail "$point: status after the restart"
	run_step "r-$point" "$(svc_json "r-$point" start berry 2.0.0 "$D2" "$PORT")" --insecure-registry ||
		fail "$point: the START again: $(final "r-$point")"
	wait_for 5 serves 2.0.0 || fail "$point: 2.0.0 not serving"
	# One process, the one the pid file names, for a while (a second one
	# would be restarted by the supervisor and exit, port taken).
	for ((i = 0; i < 15; i++)); do
		procs=$(svc_procs | tr '\n' ' ')
		[[ $procs == "$(svc_pid) " ]] ||
			fail "$point: service processes [$procs], the pid file names [$(svc_pid)]"
		sleep 0.1
	done
	run_step "x-$point" "$(simple_json "x-$point" stop berry)" || fail "$point: stop"
	wait_for 10 no_procs || fail "$point: processes left after the STOP: $(svc_procs | tr '\n' ' ')"
	[[ -z $(http_body "$URL/version") ]] || fail "$point: something still answers on $PORT after the STOP"
	ok "agent SIGKILLed at '$point' of a launch: after a restart one process serves (the pid file's), none after a STOP"
done

# A foreign listener holds the port: the service exits (Address already in
# use) and the health check on the port answers 200 from the foreign one.
"$(mkimage_berry_bin)" --name foreign --port "$PORT" --listen-addr 127.0.0.1 --version 9.9.9 \
	>"$TMP/foreign.log" 2>&1 &
fpid=$!
at_exit "kill $fpid"
wait_for 10 serves 9.9.9 || fail "the foreign listener does not serve"
# Checks 500 ms apart: the check can only turn healthy after the process
# has had its chance to fail its bind.
slow='{"health":{"kind":"http","path":"/health","interval_ms":500,"timeout_ms":1000,"healthy_threshold":2,"unhealthy_threshold":2,"deadline_ms":8000}}'
run_step g1 "$(svc_json g1 start berry 1.0.0 "$D1" "$PORT" "$slow")" --insecure-registry &&
	fail "a START whose process exited succeeded on a foreign process's health: $(final g1)"
msg=$(field g1 .message)
[[ $msg == *"exited during its health gate (exit status"* && $msg == *"Address already in use"* ]] ||
	fail "the START did not fail with the process's own error: $msg"
[[ $(http_body "$URL/version") == 9.9.9 ]] || fail "the foreign listener was disturbed"
ok "a START whose process exits (port held by a foreign listener) fails although the check passes: ${msg:0:160}"

kill "$fpid"
wait "$fpid" 2>/dev/null || true
run_step g2 "$(svc_json g2 start berry 1.0.0 "$D1" "$PORT" "$slow")" --insecure-registry ||
	fail "the START with the port free: $(final g2)"
[[ $(http_body "$URL/version") == 1.0.0 ]] || fail "1.0.0 not serving once the port is free"
ok "with the port free the same START passes its gate"

echo "$TEST_NAME: $PASSED passed, 0 failed"
