#!/usr/bin/env bash
# agent_health.sh: health checks and release switching through the real
# drover-agent: damped http thresholds with transitions reported with their
# durations, tcp and exec checks, the one-shot HEALTH_CHECK action, an
# unhealthy version failing its health gate, blue-green slots with finalize,
# and fast rollback to the previous release with the registry stopped.
TEST_NAME=agent_health
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
setup_registry

push_berry D1 1.0.0
push_berry D2 2.0.0
push_berry D3 3.0.0 --unhealthy
P1=$(pick_port)
P2=$(pick_port "$P1")
stop_on_exit berry

damped='{"health":{"kind":"http","path":"/health","body_match":"ok","interval_ms":150,"timeout_ms":1000,"healthy_threshold":2,"unhealthy_threshold":3,"deadline_ms":8000}}'
run_step s1 "$(svc_json s1 start berry 1.0.0 "$D1" "$P1" "$damped")" --insecure-registry ||
	fail "start 1.0.0: $(final s1)"
has "$TMP/s1.out" '.result == "health" and .health.healthy == true' || fail "no healthy transition"
ok "http check with body match: healthy transition reported during the start"

# Watch with a long-running agent while the service fails and recovers. The
# watcher runs until it is stopped below: a fixed watch time would be a bet
# on how fast a loaded machine gets through the steps.
"$AGENT" run-step --status --dir "$AGENT_DIR" --watch 120000 >"$TMP/w.out" 2>"$TMP/w.err" &
wpid=$!
at_exit "kill $wpid"
wait_for 5 has "$TMP/w.out" '.result == "health" and .health.healthy == true' || fail "watcher never saw healthy"
# A blip shorter than unhealthy_threshold x interval: damped, no transition.
# The service times the blip itself (200 ms: at most 2 of the 3 probes it
# takes fail), so a slow client cannot stretch it.
http_body "http://127.0.0.1:$P1/fail?ms=200" >/dev/null
sleep 1
! has "$TMP/w.out" '.result == "health" and .health.healthy == false' || fail "a short blip flipped the state"
ok "a failure shorter than the unhealthy threshold does not flip the state (damped)"
http_body "http://127.0.0.1:$P1/fail" >/dev/null
t0=$(date +%s%N)
wait_for 5 has "$TMP/w.out" '.result == "health" and .health.healthy == false' || fail "no unhealthy transition"
down_ms=$((($(date +%s%N) - t0) / 1000000))
((down_ms >= 300)) || fail "went unhealthy after $down_ms ms: fewer than 3 failed probes"
sleep 0.5
http_body "http://127.0.0.1:$P1/recover" >/dev/null
wait_for 5 has "$TMP/w.out" '.result == "health" and .health.healthy == true and .health.previous_state_ms > 0 and (.message | test("healthy after"))' ||
	fail "no recovery transition"
kill -INT "$wpid" 2>/dev/null || true
wait "$wpid" || true
jq -c 'select(.result == "health") | .health' "$TMP/w.out" >"$TMP/transitions"
# healthy (after start) -> unhealthy (previous state lasted > 1 s) -> healthy (after >= 500 ms)
[[ $(sed -n 2p "$TMP/transitions" | jq '.healthy == false and .previous_state_ms >= 1000') == true ]] ||
	fail "unhealthy transition: $(cat "$TMP/transitions")"
[[ $(sed -n 3p "$TMP/transitions" | jq '.healthy == true and .previous_state_ms >= 500') == true ]] ||
	fail "recovery transition: $(cat "$TMP/transitions")"
ok "unhealthy after 3 failures (${down_ms} ms), healthy again after 2; each transition carries the previous state's duration"

# One-shot checks: http, tcp and exec kinds.
hc() { jq -cn --arg s "$1" --argjson h "$2" '{action:"health_check", step_id:$s, service:{name:"berry", health:$h}}'; }
run_step h1 "$(hc h1 "{\"kind\":\"tcp\",\"port\":$P1}")" || fail "tcp check: $(final h1)"
run_step h2 "$(hc h2 "{\"kind\":\"exec\",\"exec\":[\"sh\",\"-c\",\"test -f VERSION && test \$DROVER_PORT = $P1 && test \$(id -un) = drover-svc && grep -q 'CapEff:.0000000000000000' /proc/self/status\"]}")" ||
	fail "exec check (as drover-svc, no capabilities): $(final h2)"
run_step h3 "$(hc h3 '{"kind":"http","path":"/health","body_match":"nope"}')" && fail "body mismatch passed"
dead=$(pick_port "$P1" "$P2")
run_step h4 "$(hc h4 "{\"kind\":\"tcp\",\"port\":$dead}")" && fail "tcp to a closed port passed"
[[ $(field h4 .message) == *refused* ]] || fail "tcp failure message: $(field h4 .message)"
ok "health_check action: tcp, exec (runs in the release root as the service's user) and http body match, failures explained"

# An unhealthy version fails its health gate; the report says why.
quick='{"health":{"kind":"http","path":"/health","interval_ms":150,"timeout_ms":500,"healthy_threshold":2,"unhealthy_threshold":2,"deadline_ms":2000}}'
run_step s3 "$(svc_json s3 start berry 3.0.0 "$D3" "$P1" "$quick")" --insecure-registry &&
	fail "unhealthy 3.0.0 passed the gate"
[[ $(field s3 .message) == *"not healthy within 2000 ms"*"503"* ]] || fail "gate message: $(field s3 .message)"
[[ $(rel s3 .healthy) == false && $(rel s3 .version) == 3.0.0 && $(rel s3 .previous_version) == 1.0.0 ]] ||
	fail "gate report: $(final s3)"
ok "an unhealthy version fails the health gate: $(field s3 .message | cut -c1-90)"

# Fast rollback with the registry stopped.
registry_stop "$REG_DIR"
t0=$(date +%s%N)
run_step r1 "$(simple_json r1 activate_previous berry)" || fail "rollback: $(final r1)"
ms=$((($(date +%s%N) - t0) / 1000000))
[[ $(http_body "http://127.0.0.1:$P1/version") == 1.0.0 && $(rel r1 .version) == 1.0.0 ]] || fail "rollback: $(final r1)"
((ms < 5000)) || fail "rollback took $ms ms"
ok "activate_previous with the registry stopped: 1.0.0 back and healthy in $ms ms"
registry_start "$REG_DIR" "$REG_PORT" || fail "registry restart"

# Blue-green: 2.0.0 in slot green on P2 runs beside 1.0.0 on P1.
run_step g1 "$(svc_json g1 start berry 2.0.0 "$D2" "$P2" '{"slot":"green"}')" --insecure-registry ||
	fail "green start: $(final g1)"
[[ $(http_body "http://127.0.0.1:$P1/version") == 1.0.0 && $(http_body "http://127.0.0.1:$P2/version") == 2.0.0 ]] ||
	fail "both slots should serve"
[[ $(rel g1 .state green) == running && $(rel g1 .state) == running ]] || fail "releases: $(final g1)"
ok "blue-green: 2.0.0 (slot green, :$P2) runs beside 1.0.0 (:$P1), both reported"
run_step f1 "$(simple_json f1 finalize berry)" || fail "finalize: $(final f1)"
wait_for 5 test -z "$(http_body "http://127.0.0.1:$P1/version")" || fail "old slot still serving"
[[ $(http_body "http://127.0.0.1:$P2/version") == 2.0.0 ]] || fail "green stopped by finalize"
ok "finalize stops the old slot, the new one keeps serving"
registry_stop "$REG_DIR"
run_step r2 "$(simple_json r2 activate_previous berry)" || fail "blue-green rollback: $(final r2)"
[[ $(http_body "http://127.0.0.1:$P1/version") == 1.0.0 ]] || fail "1.0.0 not back"
wait_for 5 test -z "$(http_body "http://127.0.0.1:$P2/version")" || fail "green still serving after rollback"
ok "rollback after finalize (registry stopped): 1.0.0 back on :$P1, green stopped"
registry_start "$REG_DIR" "$REG_PORT" || fail "registry restart"

# Rollback before the switch (the traffic switch failed): STOP names the new
# slot, which alone stops; the old release keeps serving and is current
# again. (It used to stop both slots: the service ran nowhere. Found by the
# chaos soak, tests/soak.)
run_step g2 "$(svc_json g2 start berry 2.0.0 "$D2" "$P2" '{"slot":"green"}')" --insecure-registry ||
	fail "green start: $(final g2)"
[[ $(http_body "http://127.0.0.1:$P2/version") == 2.0.0 ]] || fail "green does not serve"
run_step x1 "$(jq -cn '{action:"stop", step_id:"x1", service:{name:"berry", slot:"green"}}')" ||
	fail "stop green: $(final x1)"
wait_for 5 test -z "$(http_body "http://127.0.0.1:$P2/version")" || fail "green still serving after its stop"
[[ $(http_body "http://127.0.0.1:$P1/version") == 1.0.0 ]] || fail "stopping green stopped 1.0.0 too: $(final x1)"
[[ $(rel x1 .version) == 1.0.0 && $(rel x1 .state) == running ]] ||
	fail "1.0.0 is not the current release again: $(final x1)"
ok "stop of the new slot before the switch: only green stops, 1.0.0 keeps serving and is current ($(field x1 .message))"

echo "$TEST_NAME: $PASSED passed, 0 failed"
