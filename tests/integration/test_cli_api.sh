#!/bin/bash
# test_cli_api.sh: the drover CLI against a real API server (api_testd: the
# real HTTP framework on a real SQLite file): global options and their
# environment fallbacks, exit codes 0/2/3, audit, events with --follow
# resuming through a server restart without losing or repeating events.
set -euo pipefail
: "${DROVERD:?} ${DROVER_CLI:?} ${DROVER_BUILD:?}"
API_TESTD=${API_TESTD:-$DROVER_BUILD/tests/integration/api_testd}
# shellcheck source=../lib/api.sh
. "$(dirname "$0")/../lib/api.sh"
api_test_begin cli-test curl jq

ADMIN=$(tok admin root)
DEPLOYER=$(tok deployer ci)
VIEWER=$(tok viewer watcher)

start_server() {
	api_start_testd --keepalive-ms 300 "$@"
	PORT=$API_PORT
}
stop_server() {
	kill "$SERVER_PID"
	wait "$SERVER_PID" || true
	SERVER_PID=
}
drover() { "$DROVER_CLI" "$@"; }
code() { set +e; "$@" >"$API_TMP/out" 2>"$API_TMP/err"; echo $?; set -e; }

# ---- without a server
expect_eq "version --client" "$(drover version --client)" "drover $(drover --version | cut -d' ' -f2)"
drover --help >"$API_TMP/help"
for c in events audit version; do grep -q "^  $c " "$API_TMP/help" || fail "--help does not list $c"; done
echo "ok: --help lists the commands"
expect_eq "no command" "$(code drover)" 2
expect_eq "unknown command" "$(code drover frobnicate)" 2
expect_eq "bad option" "$(code drover audit --bogus)" 2
expect_eq "command help" "$(code drover events --help)" 0
grep -q '^usage: drover events' "$API_TMP/out" || fail "events --help"
# A port nobody listens on: bind-and-release would race, so use the
# discard port of a loopback address no test binds.
expect_eq "unreachable" "$(code drover --coordinator http://127.0.0.1:9 --token x audit)" 3
grep -q 'cannot reach the coordinator at http://127.0.0.1:9' "$API_TMP/err" || fail "unreachable message: $(cat "$API_TMP/err")"
expect_eq "unreachable via DROVER_ADDR" "$(DROVER_ADDR=127.0.0.1:9 code drover events)" 3

start_server
export DROVER_ADDR=$API_URL

# ---- authentication exit codes
expect_eq "no token" "$(code drover audit)" 3
grep -q 'not authenticated' "$API_TMP/err" || fail "401 message"
expect_eq "bad token" "$(code drover --token drv_nope audit)" 3
expect_eq "weak role" "$(code drover --token "$VIEWER" audit)" 3
grep -q 'not allowed' "$API_TMP/err" || fail "403 message"
expect_eq "DROVER_TOKEN" "$(DROVER_TOKEN=$ADMIN code drover audit)" 0
printf '%s\n' "$ADMIN" >"$API_TMP/admin.token"
chmod 600 "$API_TMP/admin.token"
expect_eq "--token-file" "$(code drover --token-file "$API_TMP/admin.token" audit)" 0
expect_eq "DROVER_TOKEN_FILE" "$(DROVER_TOKEN_FILE=$API_TMP/admin.token code drover audit)" 0
expect_eq "--token beats DROVER_TOKEN" "$(DROVER_TOKEN=$ADMIN code drover --token "$VIEWER" audit)" 3
expect_eq "DROVER_TOKEN beats DROVER_TOKEN_FILE" \
	"$(DROVER_TOKEN=$VIEWER DROVER_TOKEN_FILE=$API_TMP/admin.token code drover audit)" 3
expect_eq "--token-file beats DROVER_TOKEN" \
	"$(DROVER_TOKEN=$VIEWER code drover --token-file "$API_TMP/admin.token" audit)" 0
expect_eq "version with server" "$(code drover version)" 0
grep -q "^coordinator .* at $API_URL" "$API_TMP/out" || fail "version: $(cat "$API_TMP/out")"

# ---- audit
api_req DELETE /v1/test/items/berry-7 "$ADMIN" >/dev/null
api_req DELETE /v1/test/items/berry-8 "$VIEWER" >/dev/null
export DROVER_TOKEN=$ADMIN
expect_eq "audit table" "$(code drover audit)" 0
head -1 "$API_TMP/out" | grep -q '^ID  *TIME  *ACTOR  *ROLE  *FROM  *METHOD  *PATH  *STATUS  *DETAIL$' || fail "audit header: $(head -1 "$API_TMP/out")"
grep -q 'root  *admin  *127.0.0.1  *DELETE  */v1/test/items/berry-7  *200' "$API_TMP/out" || fail "audit row: $(cat "$API_TMP/out")"
expect_eq "audit --json" "$(code drover audit --json)" 0
expect_eq "audit json rows" "$(jq -r '[.[] | select(.method=="DELETE")] | length' "$API_TMP/out")" 2
expect_eq "audit refused row" "$(jq -r '.[] | select(.status==403) | .actor' "$API_TMP/out")" watcher
expect_eq "audit --limit" "$(code drover audit --limit 0)" 2

# ---- events
export DROVER_TOKEN=$VIEWER
publish() { api_req POST /v1/test/publish "$DEPLOYER" -d "$1" >/dev/null; }
publish '{"kind":"started","deployment_id":"d1","data":{"version":"2.4.0"}}'
publish '{"kind":"agent_connected","agent_id":"web-1"}'
expect_eq "events" "$(code drover events)" 0
grep -q ' started  *deployment=d1 {"version":"2.4.0"}$' "$API_TMP/out" || fail "events line: $(cat "$API_TMP/out")"
grep -q ' agent_connected  *agent=web-1$' "$API_TMP/out" || fail "events agent line: $(cat "$API_TMP/out")"
expect_eq "events --json" "$(code drover events --json --deployment d1)" 0
expect_eq "events json" "$(jq -r '"\(.kind) \(.data.version)"' "$API_TMP/out")" "started 2.4.0"
expect_eq "events --kind" "$(code drover events --json --kind agent_connected)" 0
expect_eq "kind filter" "$(jq -r .agent_id "$API_TMP/out")" web-1
expect_eq "events bad --tail" "$(code drover events --tail x)" 2

# ---- --follow resumes through a restart, without loss or repeats
"$DROVER_CLI" events --follow --json --tail 0 >"$API_TMP/follow" 2>"$API_TMP/follow.err" &
FOLLOW_PID=$!
BG_PIDS=("$FOLLOW_PID")
has_lines() { [[ $(wc -l <"$API_TMP/follow") -ge $1 ]]; }
# The follower is connected once it is in the server's stream gauge.
following() { api_req GET /metrics "$VIEWER" >/dev/null; grep -q '^drover_http_streams 1$' "$API_BODY"; }
wait_for 10 following || fail "follower did not connect"
publish '{"kind":"tier_done","deployment_id":"d1","data":{"n":1}}'
wait_for 10 has_lines 1 || fail "follower missed the first event"
stop_server
# While the coordinator is down, events still happen (written to its store).
sqlite3 "$db" "INSERT INTO events(at_ms, kind, deployment_id, data) VALUES (1, 'tier_done', 'd1', '{\"n\":2}')"
start_server --listen "127.0.0.1:$PORT"
publish '{"kind":"tier_done","deployment_id":"d1","data":{"n":3}}'
wait_for 20 has_lines 3 || fail "follower did not resume: $(cat "$API_TMP/follow" "$API_TMP/follow.err")"
expect_eq "resumed in order, no loss, no repeat" "$(jq -r .data.n "$API_TMP/follow" | tr '\n' ,)" "1,2,3,"
kill -0 "$FOLLOW_PID" || fail "follower died"
kill "$FOLLOW_PID"; wait "$FOLLOW_PID" 2>/dev/null || true; BG_PIDS=()
stop_server
echo "PASS"
