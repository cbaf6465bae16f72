#!/usr/bin/env bash
# CTest it_fleetsim_smoke: fleetsim works against a real droverd. 20 virtual
# agents enroll with the enrollment token, keep long polls, get one
# instruction each through the admin API in two rounds, acknowledge them and
# report them done; droverd records every ack and every report. A few
# seconds; the real benchmarks are `make bench` (docs/benchmarks.md).
TEST_NAME=fleetsim_smoke
source "$(dirname "$0")/../integration/link_lib.sh"
FLEETSIM=${FLEETSIM:?set FLEETSIM to the fleetsim binary (ctest does)}

coord_init --enroll-token
coord_start
"$FLEETSIM" --coordinator "$LINK_URL" --coordinator-key "$COORD/coordinator.pub" \
	--enroll-token-file "$COORD/enroll.token" -n 20 --id-prefix smoke- \
	--queue-api "$DROVER_ADDR" --admin-token-file "$COORD/admin.token" \
	--rounds 2 --hook 50ms --settle 300ms --coord-pid "$COORD_PID" --round-timeout 60s \
	--connect-timeout 60s --json "$TMP/fleetsim.json" >"$TMP/fleetsim.log" 2>&1 ||
	fail "fleetsim failed: $(cat "$TMP/fleetsim.log")"
cat "$TMP/fleetsim.log"
j() { jq -r "$1" "$TMP/fleetsim.json"; }
[[ $(j .enrolled) == true && $(j .agents) == 20 ]] || fail "not enrolled: $(cat "$TMP/fleetsim.json")"
ok "20 virtual agents enrolled by token and polling"

[[ $(j '[.rounds[] | select(.complete and .agents_rx == 20 and .agents_acked == 20)] | length') == 2 ]] ||
	fail "rounds: $(j -c .rounds)"
[[ $(j .totals.rejects) == 0 && $(j .totals.instructions) == 40 ]] ||
	fail "totals: $(j -c .totals)"
awk -v x="$(j '.rounds[0].first_instruction_all_ms')" 'BEGIN { exit !(x > 0 && x < 60000) }' ||
	fail "no fan-out time measured"
ok "two rounds: every agent received, acknowledged and reported its instruction"

[[ $(sql "select count(*) from instructions where agent_id like 'smoke-%' and state = 'acked'") == 40 ]] ||
	fail "droverd: $(sql "select state, count(*) from instructions group by state")"
[[ $(sql "select count(*) from events where kind = 'report' and agent_id like 'smoke-%' and json_extract(data, '\$.result') = 'succeeded'") == 40 ]] ||
	fail "droverd did not record 40 succeeded reports"
[[ $(sql "select count(*) from agents where id like 'smoke-%' and status = 'accepted' and enrolled_by like 'token:%'") == 20 ]] ||
	fail "agents not enrolled by token"
ok "droverd has every instruction acknowledged and every report recorded"

[[ $(j '.coordinator_proc.rss_connected_kb') -gt 0 && $(j '.coordinator_proc.nofile_soft') != null ]] ||
	fail "no /proc sample of droverd"
ok "droverd's RSS and open-files limit sampled from /proc"
