#!/usr/bin/env bash
# tls+tcp://: the round trip over TLS with the coordinator's certificate
# pinned; an agent pinning another certificate, or speaking plain tcp:// to
# the TLS port, gets nowhere. Key rotation: an agent trusting two
# coordinator keys keeps working when droverd switches to the new key; one
# trusting only the old key refuses (and counts) everything until its key
# ring is updated.
TEST_NAME=link_tls
source "$(dirname "$0")/link_lib.sh"

port=$(pick_port)
LINK_URL=tls+tcp://127.0.0.1:$port
coord_init --enroll-token
[[ $LINK_PORT != "$port" ]] && LINK_PORT=$port
openssl x509 -in "$COORD/tls.crt" -noout -subject | grep -q 'CN *= *droverd' || fail "certificate CN"
[[ $(stat -c %a "$COORD/tls.key") == 600 ]] || fail "tls.key mode"
coord_start
ok "droverd listens on tls+tcp:// with the certificate droverd init made"

"$DROVERD" keygen --out "$TMP/next" >/dev/null || fail "droverd keygen"
agent_init a1 --enroll-token-file "$COORD/enroll.token" --tls-ca "$COORD/tls.crt" \
	--coordinator-key "$TMP/next.pub"
agent_init a2 --enroll-token-file "$COORD/enroll.token" --tls-ca "$COORD/tls.crt"
agent_start a1
agent_start a2
both() { is_state a1 connected && is_state a2 connected; }
wait_for 30 both || fail "TLS agents not connected: $(agents_json)"
instruct a1 t1 /bin/sh -c "echo t1 >> $TMP/a1.out" >/dev/null
wait_for 20 has_lines "$TMP/a1.out" 1 || fail "round trip over TLS"
acked() { [[ $(sql "select state from instructions where agent_id='$1' and step_id='$2'") == acked ]]; }
wait_for 20 acked a1 t1 || fail "not acknowledged over TLS"
ok "instruction round trip with ack over tls+tcp://"

# another certificate pinned: no connection, so nothing reaches droverd
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
	-subj /CN=droverd -keyout "$TMP/other.key" -out "$TMP/other.crt" >/dev/null 2>&1 ||
	fail "openssl"
agent_init mitm --enroll-token-file "$COORD/enroll.token" --tls-ca "$TMP/other.crt"
agent_start mitm
"$AGENT" init --dir "$TMP/plain" --coordinator "tcp://127.0.0.1:$LINK_PORT" \
	--coordinator-key "$COORD/coordinator.pub" --id plain \
	--enroll-token-file "$COORD/enroll.token" >/dev/null 2>&1 || fail "init plain"
agent_start plain
sleep 3 # give them the chance to (wrongly) get through
[[ -z $(agent_state mitm) && -z $(agent_state plain) ]] ||
	fail "an agent without the right certificate or without TLS got through: $(agents_json)"
grep -q '"session": "connecting"' "$TMP/mitm/state/link-status.json" || fail "mitm state"
ok "an agent pinning another certificate, or without TLS, never reaches droverd"

# rotation: switch droverd to the new key
coord_stop TERM
set_opt "$COORD/droverd.yaml" signing_key "\"$TMP/next.key\""
coord_start
instruct a1 t2 /bin/sh -c "echo t2 >> $TMP/a1.out" >/dev/null
wait_for 60 has_lines "$TMP/a1.out" 2 || fail "a1 (two trusted keys) did not follow the rotation"
ok "an agent trusting both keys follows the rotation"
wait_for 40 agent_stat_at_least a2 .rejected.unknown_key 1 ||
	fail "a2 did not refuse the new key: $(cat "$TMP/a2/state/link-stats.json")"
instruct a2 t2 /bin/sh -c "echo t2 >> $TMP/a2.out" >/dev/null
sleep 2
[[ $(lines "$TMP/a2.out") == 0 ]] || fail "a2 ran an instruction signed by a key it does not trust"
ok "an agent trusting only the old key refuses (and counts) what the new key signs"
agent_stop a2
sed -i "s|^coordinator_keys:|coordinator_keys:\n  - \"$TMP/next.pub\"|" "$TMP/a2/agent.yaml"
agent_start a2
wait_for 60 has_lines "$TMP/a2.out" 1 || fail "a2 with the new key in its ring"
ok "with the new key added to its ring, the agent runs the queued instruction"
echo "$TEST_NAME: all $PASSED checks passed"
