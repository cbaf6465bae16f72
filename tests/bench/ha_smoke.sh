#!/usr/bin/env bash
# CTest bench_ha_smoke (labels integration, store_pg): the issue 20 bench
# scripts still run, at toy sizes: store_compare.sh with 20 agents (both
# engines, one fan-out round and the rolling deployment) and failover.sh
# with a 2 s lease and two rounds (kill -9, SIGTERM). Their JSON
# must hold every figure; no figure is judged (a slow machine passes).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${DROVER_BUILD:?set by ctest}"
BENCH_OUT=$(mktemp -d "${TMPDIR:-/tmp}/drover-bench-ha-smoke.XXXXXX")
export BENCH_OUT
trap 'budget_end; rm -rf "$BENCH_OUT"' EXIT
# shellcheck source=../lib/budget.sh
source "$HERE/../lib/budget.sh"
budget_start
budget_step "store_compare.sh"
bash "$HERE/store_compare.sh" 20 1 >"$BENCH_OUT/compare.log" 2>&1 || {
	rc=$?
	tail -n 30 "$BENCH_OUT/compare.log"
	exit "$rc"
}
tail -n 12 "$BENCH_OUT/compare.log"
jq -e '(.rows | length) == 7 and all(.rows[] | select(.name | test("CPU") | not); .sqlite > 0 and .pg > 0 and .ratio > 0)' \
	"$BENCH_OUT/store-compare-20.json" >/dev/null || { echo "store-compare-20.json: $(cat "$BENCH_OUT/store-compare-20.json")"; exit 1; }
echo "ok 1 - store_compare.sh: both engines measured"
budget_step "failover.sh"
FAILOVER_LEASE=2s FAILOVER_RECONNECT_MAX=1s bash "$HERE/failover.sh" 2 >"$BENCH_OUT/failover.log" 2>&1 || {
	rc=$?
	tail -n 30 "$BENCH_OUT/failover.log"
	exit "$rc"
}
grep '^round' "$BENCH_OUT/failover.log"
jq -e '(.rounds | length) == 2 and all(.rounds[]; .lead_ms > 0 and .resumed_ms >= .lead_ms and .first_instruction_ms > 0)' \
	"$BENCH_OUT/failover.json" >/dev/null || { echo "failover.json: $(cat "$BENCH_OUT/failover.json")"; exit 1; }
echo "ok 2 - failover.sh: kill -9 and SIGTERM measured"
