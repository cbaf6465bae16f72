#!/bin/bash
# test_api_http.sh: the HTTP layer for real: a server process (api_testd:
# the real framework on a real SQLite file), tokens made by `droverd token`,
# requests with curl. Covers auth (401/403, revoked), routing (404/405),
# strict JSON bodies, body caps (413), audit, metrics, events with
# Last-Event-ID, and SSE clients that vanish.
set -euo pipefail
: "${DROVERD:?} ${DROVER_BUILD:?}"
API_TESTD=${API_TESTD:-$DROVER_BUILD/tests/integration/api_testd}
# shellcheck source=../lib/api.sh
. "$(dirname "$0")/../lib/api.sh"
api_test_begin api-test curl jq

ADMIN=$(tok admin root)
DEPLOYER=$(tok deployer ci)
VIEWER=$(tok viewer watcher)
[[ $ADMIN == drv_* && ${#ADMIN} -eq 47 ]] || fail "token format: $ADMIN"

start_server() { api_start_testd --max-body 65536 --max-streams 4 --keepalive-ms 200 "$@"; }
start_server

# ---- health, routing
expect_eq "healthz status" "$(api_req GET /healthz)" 200
expect_eq "healthz body" "$(api_field .status)" ok
expect_eq "unknown route" "$(api_req GET /v1/nope "$ADMIN")" 404
expect_eq "unknown route code" "$(api_field .error.code)" not-found
expect_eq "wrong method" "$(api_req PUT /v1/test/echo "$ADMIN")" 405
grep -qi '^Allow: POST' "$API_HEADERS" || fail "405 without Allow header"
expect_eq "trailing slash is another path" "$(api_req GET /v1/test/items/a/ "$VIEWER")" 404

# ---- authentication and roles
expect_eq "no token" "$(api_req GET /v1/test/items/a)" 401
expect_eq "no token code" "$(api_field .error.code)" unauthorized
grep -qi '^WWW-Authenticate: Bearer realm="drover"' "$API_HEADERS" || fail "401 without WWW-Authenticate"
expect_eq "bad token" "$(api_req GET /v1/test/items/a drv_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)" 401
grep -qi 'error="invalid_token"' "$API_HEADERS" || fail "invalid token not flagged"
expect_eq "garbage token" "$(api_req GET /v1/test/items/a "$(head -c 3000 /dev/zero | tr '\0' x)")" 401
expect_eq "basic auth is not a token" "$(api_req GET /v1/test/items/a "" -u a:b)" 401
expect_eq "viewer reads" "$(api_req GET /v1/test/items/berry-1 "$VIEWER")" 200
expect_eq "path parameter" "$(api_field .id)" berry-1
expect_eq "escaped path parameter" "$(api_req GET /v1/test/items/a%20b "$VIEWER")" 200
expect_eq "escaped value decoded" "$(api_field .id)" "a b"
expect_eq "viewer cannot delete" "$(api_req DELETE /v1/test/items/x "$VIEWER")" 403
expect_eq "403 code" "$(api_field .error.code)" forbidden
expect_eq "deployer cannot delete" "$(api_req DELETE /v1/test/items/x "$DEPLOYER")" 403
expect_eq "admin deletes" "$(api_req DELETE /v1/test/items/x "$ADMIN")" 200
expect_eq "viewer cannot post" "$(api_req POST /v1/test/echo "$VIEWER" -d '{"name":"a"}')" 403

# ---- strict JSON bodies
J=(-H 'Content-Type: application/json')
expect_eq "echo" "$(api_req POST /v1/test/echo "$DEPLOYER" "${J[@]}" -d '{"name":"berry","count":3}')" 200
expect_eq "echo body" "$(api_field .count)" 3
expect_eq "malformed JSON" "$(api_req POST /v1/test/echo "$DEPLOYER" "${J[@]}" --data-binary $'{\n"name": "a",\n oops}')" 400
expect_eq "malformed code" "$(api_field .error.code)" invalid-json
expect_eq "malformed line" "$(api_field .error.line)" 3
expect_eq "unknown field" "$(api_req POST /v1/test/echo "$DEPLOYER" "${J[@]}" -d '{"name":"a","bogus":1}')" 400
expect_eq "unknown field code" "$(api_field .error.code)" unknown-field
expect_eq "unknown field named" "$(api_field .error.field)" bogus
expect_eq "missing field" "$(api_req POST /v1/test/echo "$DEPLOYER" "${J[@]}" -d '{"count":1}')" 400
expect_eq "missing field code" "$(api_field .error.code):$(api_field .error.field)" missing-field:name
expect_eq "wrong type" "$(api_req POST /v1/test/echo "$DEPLOYER" "${J[@]}" -d '{"name":5}')" 400
expect_eq "wrong type code" "$(api_field .error.code)" wrong-type
expect_eq "duplicate key" "$(api_req POST /v1/test/echo "$DEPLOYER" "${J[@]}" -d '{"name":"a","name":"b"}')" 400
expect_eq "not an object" "$(api_req POST /v1/test/echo "$DEPLOYER" "${J[@]}" -d '[1,2]')" 400
expect_eq "not an object code" "$(api_field .error.code)" not-an-object
expect_eq "binary garbage" "$(head -c 5000 /dev/urandom | api_req POST /v1/test/echo "$DEPLOYER" --data-binary @-)" 400
expect_eq "deep nesting" "$(printf '%.0s[' $(seq 1 5000) | api_req POST /v1/test/echo "$DEPLOYER" --data-binary @-)" 400

# ---- body caps (server runs with --max-body 65536)
head -c 70000 /dev/zero | tr '\0' 'a' >"$API_TMP/big"
expect_eq "oversized body" "$(api_req POST /v1/test/echo "$DEPLOYER" --data-binary @"$API_TMP/big")" 413
expect_eq "oversized code" "$(api_field .error.code)" too-large
expect_eq "oversized chunked body" "$(api_req POST /v1/test/echo "$DEPLOYER" -H 'Transfer-Encoding: chunked' --data-binary @"$API_TMP/big")" 413
expect_eq "server alive after 413" "$(api_req GET /healthz)" 200

# ---- revocation takes effect at once
expect_eq "deployer before revoke" "$(api_req POST /v1/test/echo "$DEPLOYER" -d '{"name":"x"}')" 200
"$DROVERD" token revoke ci --db "$db" 2>/dev/null
expect_eq "revoked token" "$(api_req POST /v1/test/echo "$DEPLOYER" -d '{"name":"x"}')" 401
"$DROVERD" token list --db "$db" --json >"$API_TMP/tokens.json"
expect_eq "token list shows revocation" "$(jq -r '.[] | select(.name=="ci") | (.revoked_ms != null)' "$API_TMP/tokens.json")" true
jq -e 'all(.[]; has("hash") | not)' "$API_TMP/tokens.json" >/dev/null || fail "token list leaks hashes"
DEPLOYER=$(tok deployer ci2)

# ---- audit
expect_eq "audit needs admin" "$(api_req GET /v1/audit "$VIEWER")" 403
expect_eq "audit" "$(api_req GET '/v1/audit?limit=1000' "$ADMIN")" 200
expect_eq "admin delete audited" "$(api_field '[.entries[] | select(.method=="DELETE" and .status==200)][0] | "\(.actor) \(.role) \(.path) \(.remote)"')" "root admin /v1/test/items/x 127.0.0.1"
expect_eq "refused delete audited" "$(api_field '[.entries[] | select(.method=="DELETE" and .status==403)] | length')" 2
expect_eq "handler note audited" "$(api_field '[.entries[] | select(.detail=="name=berry")] | length')" 1
expect_eq "reads are not audited" "$(api_field '[.entries[] | select(.method=="GET" and .status != 401)] | length')" 0
expect_eq "failed authentication audited (once per address and window)" "$(api_field '[.entries[] | select(.status==401)] | length')" 1
expect_eq "audit limit checked" "$(api_req GET '/v1/audit?limit=abc' "$ADMIN")" 400
expect_eq "audit limit field" "$(api_field .error.field)" limit
sqlite3 "$db" "DELETE FROM audit" 2>/dev/null && fail "audit rows can be deleted"
sqlite3 "$db" "UPDATE audit SET actor='x'" 2>/dev/null && fail "audit rows can be changed"
echo "ok: audit is append-only"

# ---- metrics
expect_eq "metrics need a token" "$(api_req GET /metrics)" 401
expect_eq "metrics" "$(api_req GET /metrics "$VIEWER")" 200
grep -q '^drover_http_requests_total{method="DELETE",code="403"} 2$' "$API_BODY" || fail "request counter missing"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$API_HEADERS" || fail "metrics content type"

# ---- events: publish, list, resume
for k in started tier_done succeeded; do
	expect_eq "publish $k" "$(api_req POST /v1/test/publish "$DEPLOYER" -d "{\"kind\":\"$k\",\"deployment_id\":\"d1\",\"data\":{\"n\":1}}")" 201
done
first=$(api_req POST /v1/test/publish "$DEPLOYER" -d '{"kind":"agent_connected","agent_id":"web-1"}' >/dev/null; api_field .id)
expect_eq "bad event kind" "$(api_req POST /v1/test/publish "$DEPLOYER" -d '{"kind":"Bad Kind"}')" 400
expect_eq "events catch-up" "$(api_req GET '/v1/events?follow=0&deployment=d1' "$VIEWER")" 200
grep -qi '^Content-Type: text/event-stream' "$API_HEADERS" || fail "events content type"
expect_eq "events for d1" "$(grep -c '^event: ' "$API_BODY")" 3
expect_eq "event order" "$(grep '^event: ' "$API_BODY" | cut -d' ' -f2 | tr '\n' ,)" "started,tier_done,succeeded,"
expect_eq "event data" "$(grep '^data: ' "$API_BODY" | head -1 | cut -c7- | jq -r '"\(.kind) \(.deployment_id) \(.data.n)"')" "started d1 1"
ids=$(grep '^id: ' "$API_BODY" | cut -d' ' -f2 | tr '\n' ' ')
second=$(echo "$ids" | cut -d' ' -f1)
expect_eq "resume with Last-Event-ID" "$(api_req GET '/v1/events?follow=0&deployment=d1' "$VIEWER" -H "Last-Event-ID: $second")" 200
expect_eq "resumed after the id" "$(grep '^event: ' "$API_BODY" | cut -d' ' -f2 | tr '\n' ,)" "tier_done,succeeded,"
expect_eq "since" "$(api_req GET "/v1/events?follow=0&since=$((first - 1))" "$VIEWER")" 200
expect_eq "since gives one" "$(grep -c '^event: ' "$API_BODY")" 1
expect_eq "tail" "$(api_req GET '/v1/events?follow=0&tail=2' "$VIEWER")" 200
expect_eq "tail gives two" "$(grep '^event: ' "$API_BODY" | cut -d' ' -f2 | tr '\n' ,)" "succeeded,agent_connected,"
expect_eq "bad Last-Event-ID" "$(api_req GET '/v1/events?follow=0' "$VIEWER" -H 'Last-Event-ID: x1')" 400
# a stream's cursor (docs/api.md): the position and ids below it still owed;
# SQLite has no late commits, so only the position counts here
expect_eq "resume with a cursor" "$(api_req GET '/v1/events?follow=0&deployment=d1' "$VIEWER" -H "Last-Event-ID: $((second + 1))~$second")" 200
expect_eq "resumed after its position" "$(grep '^event: ' "$API_BODY" | cut -d' ' -f2 | tr '\n' ,)" "succeeded,"
expect_eq "hole above the position" "$(api_req GET '/v1/events?follow=0' "$VIEWER" -H 'Last-Event-ID: 5~9')" 400
expect_eq "hole above the position: field" "$(api_field .error.field)" Last-Event-ID
expect_eq "cursor too long" "$(api_req GET '/v1/events?follow=0' "$VIEWER" -H "Last-Event-ID: 9~$(printf '1,%.0s' $(seq 1400))2")" 400
expect_eq "cursor too long: code" "$(api_field .error.code)" too-long
expect_eq "bad follow" "$(api_req GET '/v1/events?follow=maybe' "$VIEWER")" 400

# ---- live stream: a follower sees a new event
streams_gone() {
	api_req GET /metrics "$VIEWER" >/dev/null
	grep -q '^drover_http_streams 0$' "$API_TMP/body"
}
curl -sS -N --max-time 60 -H "Authorization: Bearer $VIEWER" "$API_URL/v1/events?tail=0" >"$API_TMP/live" 2>/dev/null &
BG_PIDS+=($!)
wait_for 10 grep -q '^retry:' "$API_TMP/live" || fail "stream did not open"
api_req POST /v1/test/publish "$DEPLOYER" -d '{"kind":"paused","deployment_id":"d2"}' >/dev/null
wait_for 10 grep -q '^event: paused' "$API_TMP/live" || fail "follower did not get the event"
wait_for 10 grep -q '^: keep-alive' "$API_TMP/live" || fail "no keep-alive on an idle stream"
echo "ok: live stream and keep-alive"
kill "${BG_PIDS[0]}"; BG_PIDS=()
wait_for 10 streams_gone || fail "a closed follower still holds its stream"

# ---- a filtered follower: 150 events of another deployment in between
# (more than one batch of the stream) are passed over, and the two of its
# own deployment arrive in order (the stream skips what it looked at and
# did not match, without losing what comes after)
curl -sS -N --max-time 120 -H "Authorization: Bearer $VIEWER" "$API_URL/v1/events?deployment=d3&tail=0" >"$API_TMP/live3" 2>/dev/null &
BG_PIDS+=($!)
wait_for 10 grep -q '^retry:' "$API_TMP/live3" || fail "stream did not open"
api_req POST /v1/test/publish "$DEPLOYER" -d '{"kind":"paused","deployment_id":"d3"}' >/dev/null
for ((i = 0; i < 150; i++)); do
	api_req POST /v1/test/publish "$DEPLOYER" -d '{"kind":"resumed","deployment_id":"d4"}' >/dev/null
done
api_req POST /v1/test/publish "$DEPLOYER" -d '{"kind":"resumed","deployment_id":"d3"}' >/dev/null
wait_for 30 grep -q '^event: resumed' "$API_TMP/live3" || fail "the filtered follower did not get its second event"
expect_eq "filtered follower" "$(grep '^event: ' "$API_TMP/live3" | cut -d' ' -f2 | tr '\n' ,)" "paused,resumed,"
expect_eq "filtered follower saw only d3" "$(grep '^data: ' "$API_TMP/live3" | cut -c7- | jq -r .deployment_id | sort -u)" d3
echo "ok: a filtered follower passes over other deployments' events"
kill "${BG_PIDS[0]}"; BG_PIDS=()
wait_for 10 streams_gone || fail "a closed follower still holds its stream"

# ---- SSE clients that vanish: max-streams is 4; 20 rounds of 4 clients
# killed abruptly must leave no stream behind.
for round in $(seq 1 20); do
	pids=()
	for i in 1 2 3 4; do
		curl -sS -N --max-time 30 -H "Authorization: Bearer $VIEWER" "$API_URL/v1/events?tail=5" \
			>"$API_TMP/s$i" 2>/dev/null &
		pids+=($!)
	done
	for i in 1 2 3 4; do
		wait_for 10 grep -q '^retry:' "$API_TMP/s$i" || fail "round $round: stream $i did not open"
	done
	if [[ $round == 1 ]]; then
		expect_eq "fifth stream refused" "$(api_req GET /v1/events "$VIEWER")" 503
		expect_eq "fifth stream code" "$(api_field .error.code)" too-many-streams
	fi
	kill -9 "${pids[@]}" 2>/dev/null
	wait "${pids[@]}" 2>/dev/null || true
	wait_for 10 streams_gone || fail "round $round: vanished clients still hold streams"
done
echo "ok: 80 vanished SSE clients released"
expect_eq "server serves after vanished clients" "$(api_req GET /healthz)" 200

# ---- stopping with a stream open ends it promptly
curl -sS -N --max-time 60 -H "Authorization: Bearer $VIEWER" "$API_URL/v1/events" >"$API_TMP/live2" 2>/dev/null &
BG_PIDS+=($!)
wait_for 10 grep -q '^retry:' "$API_TMP/live2" || fail "stream did not open"
kill -TERM "$SERVER_PID"
stopped() { ! kill -0 "$SERVER_PID" 2>/dev/null; }
wait_for 10 stopped || fail "server did not stop with a stream open"
wait "$SERVER_PID" || fail "server exited with an error"
SERVER_PID=
echo "ok: clean stop with an open stream"

# ---- POST /v1/alerts has a cap of its own (1 MiB), below a server's larger
# one: a bigger Alertmanager payload is 413 naming that limit, and audited
ALERTS=$(tok alerts alertmanager)
start_server --max-body 4194304
alerts_body() { # alerts_body BYTES: a valid payload padded with spaces to exactly BYTES
	local head='{"alerts": [{"status": "firing", "labels": {"alertname": "X"}}]}'
	printf '%s' "$head"
	head -c $(($1 - ${#head})) /dev/zero | tr '\0' ' '
}
alerts_body 1048577 >"$API_TMP/alerts-big"
alerts_body 1048576 >"$API_TMP/alerts-max"
expect_eq "alert payload over 1 MiB" "$(api_req POST /v1/alerts "$ALERTS" --data-binary @"$API_TMP/alerts-big")" 413
expect_eq "alert payload 413 code" "$(api_field .error.code)" too-large
expect_eq "alert payload 413 names the limit" "$(api_field .error.message)" \
	"an Alertmanager payload is larger than 1048576 bytes (1024 KiB), the limit of POST /v1/alerts"
expect_eq "chunked alert payload over 1 MiB" "$(api_req POST /v1/alerts "$ALERTS" -H 'Transfer-Encoding: chunked' --data-binary @"$API_TMP/alerts-big")" 413
expect_eq "chunked 413 names the limit" "$(api_field '.error.message | test("larger than 1048576 bytes")')" true
# exactly 1 MiB passes the cap and is checked (no engine in api_testd: 503)
expect_eq "alert payload of exactly 1 MiB" "$(api_req POST /v1/alerts "$ALERTS" --data-binary @"$API_TMP/alerts-max")" 503
expect_eq "malformed alert payload" "$(api_req POST /v1/alerts "$ALERTS" -d '{"alerts": [{"status": "maybe"}]}')" 400
expect_eq "malformed alert payload names the field" "$(api_field .error.message)" "alerts[0].status: must be firing or resolved"
# other routes keep the server's cap
head -c 2000000 /dev/zero | tr '\0' 'a' >"$API_TMP/big2"
expect_eq "a 2 MB body elsewhere is not cut at 1 MiB" "$(api_req POST /v1/test/echo "$ADMIN" --data-binary @"$API_TMP/big2")" 400
expect_eq "audit" "$(api_req GET '/v1/audit?limit=1000' "$ADMIN")" 200
expect_eq "alert 413s audited" "$(api_field '[.entries[] | select(.path=="/v1/alerts" and .status==413 and .actor=="alertmanager")] | length')" 2
expect_eq "alert 413 audit detail" "$(api_field '[.entries[] | select(.path=="/v1/alerts" and .status==413)][0].detail')" "refused: body over 1048576 bytes"
expect_eq "malformed alert payload audited" "$(api_field '[.entries[] | select(.path=="/v1/alerts" and .status==400)] | length')" 1
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "second server exited with an error"
SERVER_PID=
echo "PASS"
