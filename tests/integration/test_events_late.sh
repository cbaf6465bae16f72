#!/bin/bash
# test_events_late.sh: an event that commits late while an SSE client is
# away is sent when the client resumes (issue 20, docs/api.md). The real HTTP
# framework (api_testd) on a real PostgreSQL (tests/lib/pg.sh): a psql
# session takes an event id A and keeps its transaction open; the API
# publishes B (a higher id, committed). The real CLI (drover events --follow)
# gets B, whose id: line names A as still owed, then loses its connection
# (the server stops); A commits while it is away; the server comes back on
# the same address and the CLI, resuming with that id: line, gets A, once,
# and B only once. Resuming from B's bare id (an older client) works and
# does not get A; resuming from the cursor with curl gets A again.
set -euo pipefail
: "${DROVERD:?} ${DROVER_BUILD:?} ${DROVER_CLI:?}"
API_TESTD=${API_TESTD:-$DROVER_BUILD/tests/integration/api_testd}
# shellcheck source=../lib/api.sh
. "$(dirname "$0")/../lib/api.sh"
api_test_begin events-late curl jq
# shellcheck source=../lib/pg.sh
. "$(dirname "$0")/../lib/pg.sh"

_cleanup() {
	local rc=$?
	[[ -n ${PSQL_PID:-} ]] && kill "$PSQL_PID" 2>/dev/null
	_api_cleanup
	exit "$rc"
}
pg_trap _cleanup
pg_start "$API_TMP/pg" || fail "cannot start PostgreSQL"
db="pg:$PG_CONNINFO"
DEPLOYER=$(tok deployer ci)
VIEWER=$(tok viewer watcher)
[[ $VIEWER == drv_* ]] || fail "no token on PostgreSQL"

api_start_testd --keepalive-ms 200
PORT=$API_PORT

# A: an id taken in a transaction that stays open
coproc PSQL { PSQLRC=/dev/null "$PG_BIN/psql" -X -q -At -h "$PG_SOCK" -p "${PG_PORT:-5432}" \
	-U drover -d postgres 2>&1; }
echo "BEGIN; INSERT INTO events (at_ms, kind, deployment_id, agent_id, data)" \
	"VALUES (1, 'late', 'd1', '', '{\"n\":1}') RETURNING id;" >&"${PSQL[1]}"
read -r -t 20 A <&"${PSQL[0]}" || fail "psql gave no id"
[[ $A =~ ^[0-9]+$ ]] || fail "psql: $A"
expect_eq "publish B" "$(api_req POST /v1/test/publish "$DEPLOYER" -d '{"kind":"early","deployment_id":"d1","data":{"n":2}}')" 201
B=$(api_field .id)
((B > A)) || fail "B ($B) is not above A ($A)"

DROVER_ADDR=$API_URL DROVER_TOKEN=$VIEWER "$DROVER_CLI" events --follow --json --deployment d1 \
	--since $((A - 1)) >"$API_TMP/cli.out" 2>"$API_TMP/cli.err" &
CLI_PID=$!
BG_PIDS+=("$CLI_PID")
got() { [[ $(jq -s "map(select(.data.n == $1)) | length" "$API_TMP/cli.out") -ge 1 ]]; }
wait_for 20 got 2 || fail "the client did not get B: $(cat "$API_TMP/cli.out" "$API_TMP/cli.err")"
got 1 && fail "A before it committed"
echo "ok: the client got B ($B) while A ($A) is uncommitted"
expect_eq "B's frame" "$(api_req GET "/v1/events?follow=0&deployment=d1&since=$((A - 1))" "$VIEWER")" 200
expect_eq "B's id: line names A" "$(sed -n 's/^id: //p' "$API_BODY")" "$B~$A"

# the client loses its connection; A commits while it is away
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=
echo "COMMIT;" >&"${PSQL[1]}"
committed() { [[ $(pg_sql "SELECT count(*) FROM events WHERE id = $A") == 1 ]]; }
wait_for 20 committed || fail "A did not commit"
api_start_testd --keepalive-ms 200 --listen "127.0.0.1:$PORT"
wait_for 30 got 1 || fail "the resumed client did not get A: $(cat "$API_TMP/cli.out" "$API_TMP/cli.err")"
expect_eq "A once, B once" "$(jq -s -c 'map(.id)' "$API_TMP/cli.out")" "[$B,$A]"
echo "ok: the client resumed with B's id: line and got A, committed while it was away"

expect_eq "bare id resume" "$(api_req GET '/v1/events?follow=0&deployment=d1' "$VIEWER" -H "Last-Event-ID: $B")" 200
expect_eq "bare id: nothing after B" "$(grep -c '^data: ' "$API_BODY" || true)" 0
expect_eq "cursor resume" "$(api_req GET '/v1/events?follow=0&deployment=d1' "$VIEWER" -H "Last-Event-ID: $B~$A")" 200
expect_eq "cursor: A" "$(sed -n 's/^data: //p' "$API_BODY" | jq -c '[.id, .data.n]')" "[$A,1]"
echo "PASS"
