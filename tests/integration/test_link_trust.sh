#!/usr/bin/env bash
# Enrollment trust (issue 13 items 3 and 4), real droverd, drover-agents and
# a hostile peer (linkprobe claim) on 127.0.0.1:
# - a pending claim does not hold an id against a valid enrollment token
#   (replaced, with an event and an audit row);
# - pending claims are capped per source address and expire;
# - enrollment tokens have label rules, a use limit, an expiry, and can be
#   revoked (CLI and API);
# - an accepted agent's labels change only by an admin (drover agents relabel).
TEST_NAME=link_trust
source "$(dirname "$0")/link_lib.sh"

[[ -x $PROBE ]] || fail "linkprobe not built: $PROBE"
coord_init --enroll-token
set_opt "$COORD/droverd.yaml" max_pending_per_peer 5
set_opt "$COORD/droverd.yaml" pending_expiry 10s
coord_start
event_count() { sql "SELECT count(*) FROM events WHERE kind = '$1'"; }
labels_of() { agents_json | jq -c --arg id "$1" '.[] | select(.id == $id) | .'"${2:-labels}"; }

# --- squatting: a claim that was never accepted yields to a valid token
"$PROBE" claim --url "$LINK_URL" --agent-id sq-1 >"$TMP/claim.log" 2>&1 || fail "claim"
grep -q '^claim sq-1 welcome 1$' "$TMP/claim.log" || fail "squat: $(cat "$TMP/claim.log")"
is_state sq-1 pending || fail "the squatter's claim is not pending"
agent_init sq-1 --enroll-token-file "$COORD/enroll.token" --label tier=web
agent_start sq-1
wait_for 30 is_state sq-1 connected || fail "the real sq-1 with a token did not take its id"
[[ $(event_count agent_claim_replaced) == 1 ]] || fail "no agent_claim_replaced event"
[[ $(sql "SELECT count(*) FROM audit WHERE method = 'HELLO' AND detail LIKE '%sq-1%replaced%'") == 1 ]] ||
	fail "no audit row for the replaced claim"
ok "a valid enrollment token takes over an id squatted by a pending claim (event and audit row)"

# --- pending claims: capped per source address, then they expire
"$PROBE" claim --url "$LINK_URL" --agent-id cap --count 8 >"$TMP/cap.log" 2>&1 || fail "claims"
[[ $(grep -c ' welcome 1$' "$TMP/cap.log") == 5 && $(grep -c ' reject 10$' "$TMP/cap.log") == 3 ]] ||
	fail "per-address cap: $(cat "$TMP/cap.log")"
grep -q 'too many pending agents from this address' "$TMP/coord.log" ||
	fail "the cap is not explained in the log"
ok "pending claims from one address stop at link.max_pending_per_peer (5 of 8)"
no_cap_left() { [[ $(agents_json | jq '[.[] | select(.id | startswith("cap"))] | length') == 0 ]]; }
wait_for 40 no_cap_left || fail "pending claims did not expire: $(agents_json | jq -c '[.[].id]')"
[[ $(event_count agent_pending_expired) -ge 5 ]] || fail "no agent_pending_expired events"
ok "pending claims expire after link.pending_expiry, and their ids are free again"
coord_stop
set_opt "$COORD/droverd.yaml" pending_expiry 24h
coord_start

# --- token rules: labels, use limit, expiry, revocation
umask 077 # the agent refuses a token file others can read
"$DROVERD" enroll-token create webonly --config "$COORD/droverd.yaml" --label tier=web --uses 1 \
	>"$TMP/webonly.token" 2>"$TMP/webonly.err" || fail "enroll-token create: $(cat "$TMP/webonly.err")"
agent_init w-db --enroll-token-file "$TMP/webonly.token" --label tier=db
agent_start w-db
wait_for 30 is_state w-db pending || fail "w-db not pending"
wait_for 10 test "$(event_count enroll_token_refused)" -ge 1 || fail "no enroll_token_refused event"
sql "SELECT data FROM events WHERE kind = 'enroll_token_refused'" | grep -q 'tier=db' ||
	fail "the refusal does not name the label"
ok "a token limited to tier=web does not enroll an agent that says tier=db"
agent_init w-ok --enroll-token-file "$TMP/webonly.token" --label tier=web
agent_start w-ok
wait_for 30 is_state w-ok connected || fail "w-ok (tier=web) not enrolled by the token"
agent_init w-2 --enroll-token-file "$TMP/webonly.token" --label tier=web
agent_start w-2
wait_for 30 is_state w-2 pending || fail "w-2 not pending"
sleep 1
is_state w-2 pending || fail "a token with --uses 1 enrolled a second agent"
ok "the token enrolls tier=web, once (--uses 1)"

"$CLI" enroll-tokens create late --ttl 1h >"$TMP/late.token" 2>"$TMP/late.err" ||
	fail "drover enroll-tokens create: $(cat "$TMP/late.err")"
"$CLI" enroll-tokens revoke late >/dev/null || fail "drover enroll-tokens revoke"
curl -sf -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
	"$DROVER_ADDR/v1/enroll-tokens/nope/revoke" >/dev/null && fail "revoking an unknown token succeeded"
agent_init r-1 --enroll-token-file "$TMP/late.token"
agent_start r-1
wait_for 30 is_state r-1 pending || fail "r-1 not pending"
"$CLI" enroll-tokens create short --ttl 1s >"$TMP/short.token" 2>/dev/null || fail "create short"
sleep 1.5
agent_init e-1 --enroll-token-file "$TMP/short.token"
agent_start e-1
wait_for 30 is_state e-1 pending || fail "e-1 not pending"
sleep 1
is_state r-1 pending && is_state e-1 pending || fail "a revoked or expired token enrolled an agent"
states=$("$CLI" enroll-tokens --json | jq -r '[.[] | "\(.name)=\(.state)"] | sort | join(" ")')
[[ $states == "init=active late=revoked short=expired webonly=used-up" ]] || fail "token states: $states"
"$CLI" enroll-tokens | grep -q '^webonly *used-up *1/1' || fail "table: $("$CLI" enroll-tokens)"
ok "revoked and expired tokens enroll nobody; drover enroll-tokens shows each state"

# --- labels shown at accept; later changes need an admin
out=$("$CLI" agents accept w-db) || fail "accept w-db"
[[ $out == *"labels tier=db"* ]] || fail "accept does not show the labels: $out"
ok "drover agents accept shows the labels it accepts"
agent_stop w-ok
sed -i -E 's/^( *)"tier": "web"$/\1"tier": "db"/' "$TMP/w-ok/agent.yaml"
grep -q '"tier": "db"' "$TMP/w-ok/agent.yaml" || fail "cannot change w-ok's label"
agent_start w-ok
proposed() { [[ $(labels_of w-ok proposed_labels) == '{"tier":"db"}' ]]; }
wait_for 30 proposed || fail "no proposed labels: $(labels_of w-ok)"
[[ $(labels_of w-ok) == '{"tier":"web"}' ]] || fail "the agent changed its own labels: $(labels_of w-ok)"
[[ $(event_count agent_labels_refused) -ge 1 ]] || fail "no agent_labels_refused event"
"$CLI" agents | grep -E '^w-ok ' | grep -q 'relabel?' || fail "the list does not flag the proposal"
ok "an accepted agent saying other labels keeps its labels; the change is proposed and reported"
"$CLI" agents relabel w-ok >/dev/null || fail "drover agents relabel"
[[ $(labels_of w-ok) == '{"tier":"db"}' && $(labels_of w-ok proposed_labels) == null ]] ||
	fail "relabel: $(labels_of w-ok) $(labels_of w-ok proposed_labels)"
"$CLI" agents relabel w-ok >/dev/null 2>&1 && fail "a second relabel should find nothing"
[[ $(sql "SELECT count(*) FROM audit WHERE path LIKE '%/relabel'") -ge 1 ]] || fail "relabel not audited"
ok "drover agents relabel (admin) applies the proposed labels, audited"
echo "$TEST_NAME: all $PASSED checks passed"
