#!/usr/bin/env bash
# Hostile peers: linkprobe plays a bad agent against a real droverd, and a
# bad coordinator against a real drover-agent. Forged keys and signatures, a
# replayed envelope, expired and stale messages, another agent's
# instruction, oversized and garbage messages, a pending agent, an id bound
# to another key, an image without a digest: each is refused with its reason
# and counted, and both daemons keep serving. Session starts are fresh: a
# captured Hello replayed changes nothing, a flood of Hellos for a bound id
# writes a bounded number of events and log lines. Replies are bound: the
# agent ignores a Welcome, Ack or Reject relayed from another exchange.
TEST_NAME=link_reject
source "$(dirname "$0")/link_lib.sh"

[[ -x $PROBE ]] || fail "linkprobe not built: $PROBE"
coord_init --enroll-token
coord_start
agent_init a1 --enroll-token-file "$COORD/enroll.token"
agent_start a1
wait_for 30 is_state a1 connected || fail "a1 not connected"
instruct a1 s1 /bin/sh -c "echo s1 >> $TMP/a1.out" >/dev/null
wait_for 20 has_lines "$TMP/a1.out" 1 || fail "s1 did not run"
ok "a real agent is connected and has reported"

# --- a bad agent against droverd
events_before=$(sql "SELECT count(*) FROM events")
"$PROBE" attack --url "$LINK_URL" --agent-id a1 --agent-key "$TMP/a1/agent.key" --flood 300 \
	>"$TMP/attack.log" 2>&1 || fail "attack: $(cat "$TMP/attack.log")"
grep '^ok ' "$TMP/attack.log" | sed 's/^/    /'
ok "droverd refused every forged, replayed, stale, oversized and garbage message with its reason"
counted() {
	local r
	for r in malformed:2 too_large:1 unknown_key:1 bad_signature:1 expired:1 replay:1 \
		id_taken:1 not_accepted:2 version:1; do
		[[ $(coord_stat ".rejected.${r%%:*}") -ge ${r##*:} ]] || return 1
	done
}
wait_for 10 counted || fail "counters: $(coord_stat .rejected)"
metrics=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$DROVER_ADDR/metrics")
grep -q 'drover_link_rejected_total{reason="bad_signature"} [1-9]' <<<"$metrics" ||
	fail "/metrics: $(grep rejected <<<"$metrics")"
ok "every refusal is counted by reason (link-stats.json and /metrics)"
is_state a1 connected || fail "the real agent lost its connection"
instruct a1 s2 /bin/sh -c "echo s2 >> $TMP/a1.out" >/dev/null
wait_for 20 has_lines "$TMP/a1.out" 2 || fail "droverd stopped serving"
[[ $(agents_json | jq -r '.[] | select(.id | startswith("probe-")) | .state') == pending ]] ||
	fail "the probe's agent should be pending"
ok "droverd keeps serving the real agent"

# --- session freshness (issue 13 item 2)
[[ $(agents_json | jq -c '.[] | select(.id == "a1") | .labels') == '{}' ]] ||
	fail "a captured Hello rewrote a1's labels: $(agents_json | jq -c '.[] | select(.id == "a1")')"
is_state a1 connected || fail "a captured Hello took a1's connection"
[[ $(agents_json | jq -c '.[] | select(.id | startswith("probe-")) | .labels') == '{"tier":"c"}' ]] ||
	fail "a replayed proven Hello changed the probe agent: $(agents_json | jq -c '.[] | select(.id | startswith("probe-")) | .labels')"
ok "a captured Hello replayed (no nonce, or a used one on another connection) changes nothing"
conflicts=$(sql "SELECT count(*) FROM events WHERE kind = 'agent_key_conflict'")
events_after=$(sql "SELECT count(*) FROM events")
logged=$(grep -c 'agent id is bound to another key' "$TMP/coord.log" || true)
rejects_logged=$(grep -c 'message rejected' "$TMP/coord.log" || true)
((conflicts <= 3 && logged <= 3)) ||
	fail "600 Hellos for a bound id wrote $conflicts conflict events and $logged log lines"
((events_after - events_before <= 20 && rejects_logged <= 40)) ||
	fail "the attack wrote $((events_after - events_before)) events and $rejects_logged reject lines"
ok "600 Hellos for a bound id: $conflicts events, $logged conflict and $rejects_logged reject log lines"

# --- a bad coordinator against drover-agent
FAKE_PORT=$(pick_port "$LINK_PORT" "$API_PORT")
"$AGENT" init --dir "$TMP/victim" --coordinator "tcp://127.0.0.1:$FAKE_PORT" \
	--coordinator-key "$COORD/coordinator.pub" --id victim >/dev/null 2>&1 || fail "init victim"
set_opt "$TMP/victim/agent.yaml" reconnect_min 100ms
set_opt "$TMP/victim/agent.yaml" reconnect_max 1s
"$PROBE" fake-coordinator --listen "tcp://127.0.0.1:$FAKE_PORT" --coord-key "$COORD/coordinator.key" \
	--agent-id victim --out "$TMP/victim.out" --timeout 90 >"$TMP/fake.log" 2>&1 &
FAKE_PID=$!
PIDS[fake]=$FAKE_PID
agent_start victim
wait "$FAKE_PID" || fail "fake coordinator: $(tail -5 "$TMP/fake.log")"
unset "PIDS[fake]"
ok "the agent went through the whole hostile script"
exactly() { [[ $(tr '\n' ' ' <"$1") == "$2" ]] || fail "$1 holds '$(tr '\n' ' ' <"$1")', want '$2'"; }
exactly "$TMP/victim.out" "ok-1 ok-2 "
ok "only the two valid instructions ran, each once"
agent_counted() {
	local r
	for r in replay unknown_key bad_signature wrong_target expired too_large malformed no_digest; do
		[[ $(agent_stat victim ".rejected.$r") -ge 1 ]] || return 1
	done
	[[ $(agent_stat victim .instructions_duplicate) -ge 1 ]]
}
wait_for 10 agent_counted || fail "agent counters: $(cat "$TMP/victim/state/link-stats.json")"
grep -q 'report step=expired result=4' "$TMP/fake.log" || fail "expired not reported failed"
grep -q 'report step=no-digest result=4' "$TMP/fake.log" || fail "no-digest not reported failed"
[[ $(jq -r .applied_seq "$TMP/victim/state/link.json") == 4 ]] || fail "applied seq"
ok "the agent counted each refusal by reason and told the coordinator about the expired and undigested ones"
for line in "ok hello said again after a foreign welcome" "ok report resent after a foreign ack" \
	"ok session kept after a foreign reject"; do
	grep -q "$line" "$TMP/fake.log" || fail "$line: missing in $(cat "$TMP/fake.log")"
done
[[ $(agent_stat victim .rejected.wrong_target) -ge 4 ]] ||
	fail "relayed replies not counted: $(agent_stat victim .rejected)"
ok "the agent ignores a Welcome, an Ack and a Reject that name another agent or request"
kill -0 "${PIDS[victim]}" || fail "the agent died"
ok "the agent keeps running"
echo "$TEST_NAME: all $PASSED checks passed"
