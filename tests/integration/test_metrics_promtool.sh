#!/bin/bash
# test_metrics_promtool.sh: GET /metrics of a real API server (api_testd) is
# valid Prometheus text, as judged by promtool (Debian package prometheus),
# after traffic that creates every metric kind with labels, including label
# values that need escaping.
set -euo pipefail
: "${DROVERD:?} ${DROVER_BUILD:?}"
API_TESTD=${API_TESTD:-$DROVER_BUILD/tests/integration/api_testd}
if ! command -v promtool >/dev/null; then
	echo "SKIP: promtool is missing: install Debian's prometheus package (make deps)" >&2
	echo "SKIP: /metrics was NOT validated" >&2
	exit 77
fi
# shellcheck source=../lib/api.sh
. "$(dirname "$0")/../lib/api.sh"
api_test_begin metrics-test curl jq

VIEWER=$(tok viewer watcher)
"$API_TESTD" --db "$db" --port-file "$API_TMP/port" 2>"$API_TMP/server.log" &
SERVER_PID=$!
wait_for 20 test -s "$API_TMP/port" || fail "server did not start"
API_URL=http://127.0.0.1:$(cat "$API_TMP/port")

# Traffic: several methods and codes, a stream, odd paths.
api_req GET /healthz >/dev/null
api_req GET '/v1/x"y\z' >/dev/null
api_req POST /v1/test/echo >/dev/null
api_req PATCH /v1/test/echo "$VIEWER" >/dev/null
api_req GET '/v1/events?follow=0' "$VIEWER" >/dev/null
for m in FOO BAR BAZ; do api_req "$m" /healthz >/dev/null || true; done

expect_eq "metrics" "$(api_req GET /metrics "$VIEWER")" 200
promtool check metrics <"$API_BODY" || { cat "$API_BODY"; fail "promtool rejects /metrics"; }
echo "ok: promtool check metrics"
for m in drover_http_requests_total drover_http_request_duration_seconds_bucket drover_http_streams; do
	grep -q "^$m" "$API_BODY" || fail "$m missing"
done
grep -q '^drover_http_requests_total{method="PATCH",code="405"} 1$' "$API_BODY" || fail "405 not counted"
grep -q '^drover_http_requests_total{method="other",code="405"} 3$' "$API_BODY" || fail "unknown methods not folded into other"
! grep -q 'method="FOO"' "$API_BODY" || fail "a client-chosen method became a label"
echo PASS
