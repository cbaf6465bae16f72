#!/usr/bin/env bash
# test_api_trust.sh: the HTTP API's trust rules with a real droverd on a
# real SQLite file (issue 13, findings 8 and 9):
#   - an event stream (GET /v1/events) re-checks its token (token_recheck,
#     1 s here) and ends once the token is revoked; a live token's stream
#     stays open;
#   - failed authentication is counted (drover_http_auth_failures_total),
#     throttled per address (429 with Retry-After after 20 failures in a
#     minute, even for a valid token from that address, while other addresses
#     are served) and audited at most twice per address and window;
#   - a change whose audit row cannot be written (an INSERT trigger that
#     fails, added to the live database) is refused with 500 audit-failed and
#     does not happen; once the audit log works again the same change is
#     audited with its status, and no row is left unfinished.
TEST_NAME=api_trust
source "$(dirname "${BASH_SOURCE[0]}")/link_lib.sh"

coord_init
set_opt "$COORD/droverd.yaml" token_recheck 1s
coord_start
tok() { "$DROVERD" token create --db "$COORD/droverd.db" --role "$1" --name "$2" 2>/dev/null; }
WATCHER=$(tok viewer watcher)
KEEPER=$(tok viewer keeper)
[[ $WATCHER == drv_* && $KEEPER == drv_* ]] || fail "tokens"
ok "droverd with token_recheck 1s, two viewer tokens"

# ---- finding 8: a revoked token's stream ends
stream() { # NAME TOKEN: follow the events in the background
	curl -sS -N --max-time 120 -H "Authorization: Bearer $2" \
		"$DROVER_ADDR/v1/events?follow=1" >"$TMP/$1.sse" 2>/dev/null &
	PIDS[$1]=$!
}
alive() { kill -0 "${PIDS[$1]}" 2>/dev/null; }
stream watcher "$WATCHER"
stream keeper "$KEEPER"
wait_for 10 grep -q '^retry:' "$TMP/watcher.sse" || fail "the watcher's stream did not start"
wait_for 10 grep -q '^retry:' "$TMP/keeper.sse" || fail "the keeper's stream did not start"
"$DROVERD" token revoke watcher --db "$COORD/droverd.db" >/dev/null 2>&1 || fail "revoke"
t0=$(date +%s%N)
wait_for 10 bash -c "! kill -0 ${PIDS[watcher]}" || fail "the revoked token's stream still runs after 10 s"
ms=$((($(date +%s%N) - t0) / 1000000))
wait "${PIDS[watcher]}" 2>/dev/null || true
unset "PIDS[watcher]"
alive keeper || fail "the live token's stream ended too"
grep -q 'stream ended: its token is revoked' "$TMP/coord.log" || fail "no log line for the ended stream"
ok "revoked token: its event stream ended after ${ms} ms (token_recheck 1s); a live token's stream stays"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $WATCHER" "$DROVER_ADDR/v1/events?follow=0")
[[ $code == 401 ]] || fail "the revoked token reconnects: $code"
_stop_pid "${PIDS[keeper]}"
unset "PIDS[keeper]"

# ---- finding 9: failed authentication counted, throttled, audited (bounded)
metric() { # SERIES: its value on /metrics (0 when absent)
	curl -s --max-time 5 "$DROVER_ADDR/metrics" -H "Authorization: Bearer $ADMIN_TOKEN" |
		awk -v s="$1" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }'
}
from2() { # curl from 127.0.0.2 (another loopback address): status only
	curl -s --interface 127.0.0.2 -o "$TMP/from2.body" -D "$TMP/from2.headers" \
		-w '%{http_code}' --max-time 5 "$@"
}
inv0=$(metric 'drover_http_auth_failures_total{reason="invalid"}')
codes=()
for ((i = 0; i < 60; i++)); do
	codes+=("$(from2 -H "Authorization: Bearer drv_guess$i" "$DROVER_ADDR/v1/agents")")
done
n401=$(printf '%s\n' "${codes[@]}" | grep -c '^401$' || true)
n429=$(printf '%s\n' "${codes[@]}" | grep -c '^429$' || true)
[[ $n401 == 20 && $n429 == 40 ]] || fail "60 bad tokens from 127.0.0.2: $n401 x 401, $n429 x 429 (want 20, 40)"
grep -qi '^Retry-After: [1-9][0-9]*' "$TMP/from2.headers" || fail "no Retry-After: $(cat "$TMP/from2.headers")"
[[ $(from2 -H "Authorization: Bearer $ADMIN_TOKEN" "$DROVER_ADDR/v1/agents") == 429 ]] ||
	fail "a throttled address was served"
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" "$DROVER_ADDR/v1/agents") == 200 ]] ||
	fail "127.0.0.1 is throttled too"
ok "60 bad tokens from 127.0.0.2: 20 x 401, then 429 with Retry-After (a valid token too); 127.0.0.1 still served"
inv=$(metric 'drover_http_auth_failures_total{reason="invalid"}')
thr=$(metric 'drover_http_auth_failures_total{reason="throttled"}')
[[ $((inv - inv0)) == 20 && $thr == 41 ]] || fail "metric: invalid +$((inv - inv0)) throttled $thr (want +20, 41)"
ok "drover_http_auth_failures_total: invalid +20, throttled 41"
rows=$(sql "SELECT status FROM audit WHERE remote = '127.0.0.2' ORDER BY id" | tr '\n' ' ')
[[ $rows == "401 429 " ]] || fail "audit rows of 127.0.0.2: '$rows' (want one 401 and one 429)"
sql "SELECT detail FROM audit WHERE remote = '127.0.0.2' AND status = 429" | grep -q '20 failed authentications' ||
	fail "429 row detail: $(sql "SELECT detail FROM audit WHERE remote = '127.0.0.2'")"
ok "audit: one 401 row and one 429 row for 61 refused requests (bounded per address and window)"

# ---- finding 9: a change whose audit row cannot be written does not happen
agent_init web-1
agent_start web-1
wait_for 20 is_state web-1 pending || fail "web-1 not pending"
# Roles on the real routes: a deployer cannot accept agents or read the
# audit log, a viewer cannot deploy.
DEPLOYER=$(tok deployer ci)
as() { curl -s -o /dev/null -w '%{http_code}' -X "$2" -H "Authorization: Bearer $1" "${@:4}" "$DROVER_ADDR$3"; }
[[ $(as "$DEPLOYER" POST /v1/agents/web-1/accept) == 403 ]] || fail "a deployer accepted an agent"
[[ $(as "$DEPLOYER" GET /v1/audit) == 403 ]] || fail "a deployer read the audit log"
[[ $(as "$KEEPER" POST /v1/deployments --data-binary 'deployment: x') == 403 ]] || fail "a viewer deployed"
[[ $(agent_state web-1) == pending ]] || fail "web-1 is not pending any more"
ok "roles: a deployer cannot accept agents or read the audit log (403), a viewer cannot deploy (403)"
sql "CREATE TRIGGER tc_no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'test: audit disabled'); END;"
code=$(curl -s -o "$TMP/accept.body" -w '%{http_code}' -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
	"$DROVER_ADDR/v1/agents/web-1/accept")
[[ $code == 500 && $(jq -r .error.code "$TMP/accept.body") == audit-failed ]] ||
	fail "accept with a failing audit log: $code $(cat "$TMP/accept.body")"
[[ $(agent_state web-1) == pending ]] || fail "web-1 was accepted without an audit row: $(agent_state web-1)"
grep -q 'request refused: its audit row cannot be written' "$TMP/coord.log" || fail "no log line"
ok "audit insert fails (trigger on the live database): accept refused with 500 audit-failed, web-1 still pending"
sql "DROP TRIGGER tc_no_audit;"
"$CLI" agents accept web-1 >/dev/null || fail "accept after the audit log works again"
wait_for 20 is_state web-1 connected || fail "web-1 not connected"
[[ $(sql "SELECT status || ' ' || actor FROM audit WHERE path = '/v1/agents/web-1/accept' ORDER BY id DESC LIMIT 1") == "200 admin" ]] ||
	fail "accept row: $(sql "SELECT * FROM audit WHERE path LIKE '%accept%'")"
[[ $(sql "SELECT count(*) FROM audit WHERE status = 0") == 0 ]] || fail "unfinished audit rows left"
ok "audit log back: accept audited as 200 by admin, no row left unfinished"
