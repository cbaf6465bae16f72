#!/usr/bin/env bash
# Enrollment: an agent with a valid token is accepted at once; one without
# stays pending, gets no instruction and is not connected until an operator
# accepts it (drover agents accept); a rejected agent gets nothing; an id
# already bound to another key is refused and logged (no takeover); the API
# checks tokens and roles; a bad enrollment token does not enroll.
TEST_NAME=link_enroll
source "$(dirname "$0")/link_lib.sh"

coord_init --enroll-token
coord_start

agent_init tok --enroll-token-file "$COORD/enroll.token" --label tier=core
agent_init wait --label tier=ui
printf 'drvenr_not-a-valid-token\n' >"$TMP/bad.token" && chmod 600 "$TMP/bad.token"
agent_init badtok --enroll-token-file "$TMP/bad.token"
agent_start tok
agent_start wait
agent_start badtok

wait_for 20 is_state tok connected || fail "token agent not connected: $(agents_json)"
ok "an agent with a valid enrollment token is accepted and connected"
[[ $(stat -c %a "$TMP/tok/agent.key") == 600 ]] || fail "agent.key mode $(stat -c %a "$TMP/tok/agent.key")"
[[ $(stat -c %a "$COORD/admin.token") == 600 && $(stat -c %a "$COORD/enroll.token") == 600 &&
	$(stat -c %a "$COORD/coordinator.key") == 600 ]] || fail "coordinator secrets not 0600"
[[ $(sql "select count(*) from api_tokens where name='admin' and role='admin'") == 1 ]] || fail "admin hash"
! grep -rqF "$ADMIN_TOKEN" "$COORD/droverd.db" || fail "the admin token is stored in clear"
ok "the agent made its key (0600); secrets are 0600; the database keeps only the admin token's hash"
wait_for 20 is_state wait pending || fail "agent without token not pending"
wait_for 20 is_state badtok pending || fail "agent with a bad token not pending"
ok "agents without (or with an invalid) token are pending"
[[ $(agents_json | jq -r '.[] | select(.id == "tok") | .enrolled_by') == token:init ]] ||
	fail "enrolled_by"
[[ $(agents_json | jq -r '.[] | select(.id == "tok") | .labels.tier') == core ]] || fail "labels"
[[ $(agents_json | jq -r '.[] | select(.id == "tok") | .facts.hostname') != "" ]] || fail "facts"
ok "labels, host facts and enrolled_by are listed"
wait_for 10 grep -q '"session": "pending"' "$TMP/wait/state/link-status.json" ||
	fail "the pending agent does not know it is pending"
ok "the pending agent knows it is pending"

# a pending agent gets no instruction
reply=$(instruct wait w1 /bin/sh -c "echo w1 >> $TMP/wait.out")
[[ $(jq -r .error.code <<<"$reply") == not-accepted ]] || fail "queue for pending: $reply"
ok "nothing can be queued for a pending agent"

# roles: no token 401, viewer cannot accept (403), CLI exit codes
code=$(curl -s -o /dev/null -w '%{http_code}' "$DROVER_ADDR/v1/agents")
[[ $code == 401 ]] || fail "no token: $code"
viewer=$("$DROVERD" token create --role viewer --name v1 --config "$COORD/droverd.yaml" 2>/dev/null)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $viewer" "$DROVER_ADDR/v1/agents")
[[ $code == 200 ]] || fail "viewer list: $code"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $viewer" \
	"$DROVER_ADDR/v1/agents/wait/accept")
[[ $code == 403 ]] || fail "viewer accept: $code"
jq -e '.error.code' "$TMP/body" >/dev/null || fail "403 without a JSON error"
rc=0
"$CLI" --token "$viewer" agents accept wait 2>/dev/null || rc=$?
[[ $rc == 3 ]] || fail "drover agents accept as viewer: exit $rc, want 3"
rc=0
"$CLI" agents accept nosuch 2>/dev/null || rc=$?
[[ $rc == 2 ]] || fail "accept unknown agent: exit $rc, want 2"
rc=0
"$CLI" agents frobnicate 2>/dev/null || rc=$?
[[ $rc == 2 ]] || fail "usage error: exit $rc, want 2"
ok "401 without a token, 403 for a viewer, CLI exit codes 2 and 3"

"$CLI" agents accept wait >/dev/null || fail "drover agents accept"
wait_for 20 is_state wait connected || fail "accepted agent not connected: $(agents_json)"
ok "drover agents accept: the agent is connected"
reply=$(instruct wait w1 /bin/sh -c "echo w1 >> $TMP/wait.out")
[[ $(jq -r .queued <<<"$reply") == true ]] || fail "queue after accept: $reply"
wait_for 20 has_lines "$TMP/wait.out" 1 || fail "instruction did not run on the accepted agent"
ok "the accepted agent runs instructions"

"$CLI" agents reject badtok >/dev/null || fail "drover agents reject"
wait_for 20 is_state badtok rejected || fail "rejected agent state"
wait_for 10 grep -q '"session": "rejected"' "$TMP/badtok/state/link-status.json" ||
	fail "the rejected agent does not know"
reply=$(instruct badtok b1 /bin/true)
[[ $(jq -r .error.code <<<"$reply") == not-accepted ]] || fail "queue for rejected: $reply"
ok "a rejected agent gets nothing"

# an id bound to another key: refused, logged, counted; the original stays
mkdir -p "$TMP/thief"
sed "s|$TMP/tok/|$TMP/thief/|g" "$TMP/tok/agent.yaml" >"$TMP/thief/agent.yaml"
chmod 600 "$TMP/thief/agent.yaml"
before=$(coord_stat .rejected.id_taken)
agent_start thief
wait_for 20 stat_at_least .rejected.id_taken $((before + 1)) || fail "id_taken not counted"
wait_for 10 grep -q 'agent id is bound to another key' "$TMP/coord.log" || fail "not logged"
wait_for 10 grep -q '"session": "refused"' "$TMP/thief/state/link-status.json" ||
	fail "the impostor does not know it is refused"
[[ $(agents_json | jq -r '.[] | select(.id == "tok") | .key_id') == \
	$(jq -r .key_id <<<"$(sql "select json_object('key_id', key_id) from agents where id='tok'")") ]] ||
	fail "key changed"
[[ $(sql "select key_id from agents where id='tok'") == $(cut -c1-16 <<<"$(grep -o 'key=[0-9a-f]*' "$TMP/tok.log" | head -1 | cut -d= -f2)") ]] ||
	fail "the id is no longer bound to the real agent's key"
is_state tok connected || fail "the real agent lost its connection"
[[ $(sql "select count(*) from events where kind='agent_key_conflict' and agent_id='tok'") -ge 1 ]] ||
	fail "no agent_key_conflict event"
ok "an id bound to another key is refused, logged and counted; the real agent is unaffected"

# a token made while droverd runs (droverd enroll-token create) enrolls at once
"$DROVERD" enroll-token create late --config "$COORD/droverd.yaml" >"$TMP/late.token" ||
	fail "enroll-token create"
chmod 600 "$TMP/late.token"
[[ $(cut -c1-7 "$TMP/late.token") == drvenr_ ]] || fail "token format"
agent_init late --enroll-token-file "$TMP/late.token"
agent_start late
wait_for 20 is_state late connected || fail "agent with a new token: $(agents_json)"
[[ $(agents_json | jq -r '.[] | select(.id == "late") | .enrolled_by') == token:late ]] || fail "by"
ok "droverd enroll-token create: a new token enrolls an agent at once"

# forgetting an agent lets its host enroll again (from scratch: pending)
"$DROVERD" forget-agent badtok --config "$COORD/droverd.yaml" >/dev/null || fail "forget-agent"
gone() { [[ -z $(agent_state badtok) ]]; }
wait_for 10 gone || true # it may come back before we look
wait_for 30 is_state badtok pending || fail "forgotten agent did not enroll again as pending"
ok "droverd forget-agent: the host enrolls again, pending"

# the events stream saw the enrollment
"$CLI" events --help >/dev/null 2>&1 || true
[[ $(sql "select count(*) from events where kind='agent_accepted'") -ge 2 ]] || fail "events"
ok "enrollment events are recorded"
echo "$TEST_NAME: all $PASSED checks passed"
