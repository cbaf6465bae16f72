#!/usr/bin/env bash
# CTest it_fleetsim_timeouts: fleetsim survives requests that time out after
# a nap. droverd is stopped (SIGSTOP) for 3 s while 20 virtual agents hold
# long polls with short timeouts: every poll times out, each agent naps and
# says Hello again, and that Hello's reply times out too. Then droverd goes
# on (SIGCONT) and one round through the admin API must reach every agent.
# Regression: the naps slept on the request's own aio, and libnng 1.5.2
# reports a later timeout on such an aio as success with no message: the
# 10,000-host rolling benchmark died of SIGSEGV in fleetsim that way.
TEST_NAME=fleetsim_timeouts
source "$(dirname "$0")/../integration/link_lib.sh"
FLEETSIM=${FLEETSIM:?set FLEETSIM to the fleetsim binary (ctest does)}

coord_init --enroll-token
coord_start
"$FLEETSIM" --coordinator "$LINK_URL" --coordinator-key "$COORD/coordinator.pub" \
	--enroll-token-file "$COORD/enroll.token" -n 20 --id-prefix tmo- \
	--request-timeout 300ms --poll-timeout 2s --reconnect-max 200ms --idle 12s \
	--queue-api "$DROVER_ADDR" --admin-token-file "$COORD/admin.token" \
	--rounds 1 --settle 300ms --round-timeout 120s --connect-timeout 120s \
	--json "$TMP/fleetsim.json" >"$TMP/fleetsim.log" 2>&1 &
FSIM_PID=$!
PIDS[fleetsim]=$FSIM_PID
enrolled() { [[ $(sql "select count(*) from agents where id like 'tmo-%' and status = 'accepted'") == 20 ]]; }
wait_for 120 enrolled || fail "20 agents did not enroll: $(sql "select count(*) from agents")"
ok "20 virtual agents enrolled"

kill -STOP "$COORD_PID"
sleep 3
kill -CONT "$COORD_PID"
rc=0
wait "$FSIM_PID" || rc=$?
unset "PIDS[fleetsim]"
cat "$TMP/fleetsim.log"
((rc < 128)) || fail "fleetsim died of signal $((rc - 128))"
((rc == 0)) || fail "fleetsim failed (exit $rc)"
j() { jq -r "$1" "$TMP/fleetsim.json"; }
(($(j .totals.errors) > 0 && $(j .totals.hellos) > 20)) ||
	fail "no request timed out while droverd was stopped: $(j -c .totals)"
ok "requests timed out while droverd was stopped, agents said Hello again ($(j .totals.hellos) Hellos)"
[[ $(j '.rounds[0].complete') == true && $(j '.rounds[0].agents_rx') == 20 ]] ||
	fail "the round after: $(j -c .rounds)"
ok "after droverd went on, every agent received and acknowledged its instruction"
