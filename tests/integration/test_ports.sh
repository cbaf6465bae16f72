#!/usr/bin/env bash
# test_ports.sh: tests/lib/ports.sh keeps the ports one test picked away from
# the tests running beside it until it ends (it_deploy_example's service once
# found its port taken by another test's daemon), and frees what a test that
# is gone had reserved.
set -euo pipefail
LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)/ports.sh
TMP=$(mktemp -d "${TMPDIR:-/tmp}/drover-ports.XXXXXX")
export DROVER_PORT_DIR=$TMP/ports
HOLD='' LISTEN=''
cleanup() {
	local rc=$?
	budget_end
	[[ -n $HOLD ]] && kill "$HOLD" 2>/dev/null
	[[ -n $LISTEN ]] && kill "$LISTEN" 2>/dev/null
	wait 2>/dev/null || true
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
# shellcheck source=../lib/budget.sh
source "$(dirname "$0")/../lib/budget.sh"
budget_start
fail() {
	echo "ports: FAIL: $*" >&2
	exit 1
}
n=0
ok() { echo "ok $((n += 1)) - $*"; }
# shellcheck source=../lib/ports.sh
source "$LIB"

# test A picks 40 ports and a run of 8, and stays (as a test running beside)
bash -c 'source "$1"; for i in $(seq 40); do pick_port; done >"$2/a.ports"
	pick_run 8 >"$2/a.run.tmp" && mv "$2/a.run.tmp" "$2/a.run"; exec sleep 600' \
	- "$LIB" "$TMP" &
HOLD=$!
for ((i = 0; i < 100; i++)); do [[ -s $TMP/a.run ]] && break; sleep 0.1; done
[[ -s $TMP/a.run ]] || fail "test A picked no ports"
mapfile -t held <"$TMP/a.ports"
base=$(<"$TMP/a.run")
for ((i = 1; i <= 8; i++)); do held+=($((base + i))); done
[[ $(printf '%s\n' "${held[@]}" | sort -u | wc -l) == 48 ]] ||
	fail "test A's ports are not 48 different ones: ${held[*]}"
ok "test A holds 48 different ports (40 picked, a run of 8 from $((base + 1)))"

for p in "${held[@]}"; do
	! port_claim "$p" || fail "port $p, held by the live test A, was reserved again"
done
mine=$(for i in $(seq 300); do pick_port; done | sort -n)
for p in "${held[@]}"; do
	! grep -qx "$p" <<<"$mine" || fail "pick_port gave test A's port $p to test B"
done
[[ $(uniq <<<"$mine" | wc -l) == 300 ]] || fail "pick_port gave a port twice to one test"
ok "beside the live test A, none of its ports can be reserved; 300 picks miss them all"

LISTEN_PORT=$TMP/listen.port
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(600)' "$LISTEN_PORT" &
LISTEN=$!
for ((i = 0; i < 100; i++)); do [[ -s $LISTEN_PORT ]] && break; sleep 0.1; done
! port_claim "$(<"$LISTEN_PORT")" || fail "a port where something listens was reserved"
ok "a port where something listens is not reserved"

kill "$HOLD"
wait "$HOLD" 2>/dev/null || true
HOLD=
for p in "${held[@]}"; do
	port_claim "$p" || fail "port $p of test A, which is gone, cannot be reserved"
done
ok "test A gone: its 48 ports are free again"

echo 99999 >"$DROVER_PORT_DIR/31999" # held by no process that could be alive
echo $$ >"$DROVER_PORT_DIR/.keep"
port_release
left=$(find "$DROVER_PORT_DIR" -name '[0-9]*' | wc -l)
[[ $left == 1 && -e $DROVER_PORT_DIR/31999 ]] ||
	fail "port_release left $left reservations (want only the other test's)"
ok "port_release drops this test's reservations only"
