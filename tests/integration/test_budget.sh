#!/usr/bin/env bash
# test_budget.sh (it_budget): tests/lib/budget.sh ends a test script before
# CTest would kill it, and the script's own cleanup runs (docs/e2e.md):
#
#   1. every script test CTest knows gets its TIMEOUT in DROVER_TEST_TIMEOUT
#      and starts the watchdog (budget_start, itself or through its library);
#   2. a script with a 2 s budget, blocked in a foreground command (`sleep
#      600`, where its TERM trap cannot run) with a process in a network
#      namespace of its own, ends with exit 143 and "timed out after 2 s
#      during <step>"; its cleanup ran: the process and the namespace are gone;
#   3. the same for a script that polls (the trap runs between commands);
#   4. a script done within its budget exits 0 and its watchdog ends with it;
#   5. a budget spent while the script's cleanup runs: the cleanup finishes.
set -euo pipefail
TEST_NAME=budget
LIB=$(cd "$(dirname "$0")/../lib" && pwd)
REPO=$(cd "$LIB/../.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/drover-budget-test.XXXXXX")
NS=
if ((EUID == 0)) && command -v ip >/dev/null; then NS=drvbudget$$; fi
cleanup() {
	local rc=$? p
	budget_end
	set +e
	for p in "$TMP"/*/pid; do
		[[ -f $p ]] && kill -KILL "$(cat "$p")" 2>/dev/null
	done
	[[ -z $NS ]] || ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
# shellcheck source=../lib/budget.sh
source "$LIB/budget.sh"
budget_start
n=0
ok() {
	echo "ok $((n += 1)) - $*"
	budget_passed "ok $n - $*"
}
fail() {
	echo "$TEST_NAME: FAIL: $*" >&2
	exit 1
}

# 1. The CMake side: TIMEOUT handed over, and the watchdog started.
# starts_budget FILE [DEPTH]: FILE, or a file it sources, calls budget_start.
starts_budget() {
	local f=$1 depth=${2:-0} lib
	grep -q '^[[:space:]]*budget_start[[:space:]]*$' "$f" && return 0
	((depth < 3)) || return 1
	while IFS= read -r lib; do
		starts_budget "$lib" $((depth + 1)) && return 0
	done < <(grep -E '^[[:space:]]*(source|\.) ' "$f" | grep -oE '[A-Za-z0-9_.-]+\.sh' | sort -u |
		while IFS= read -r name; do find "$REPO/tests" -name "$name" -type f; done)
	return 1
}
if [[ -n ${DROVER_BUILD:-} ]] && command -v jq >/dev/null; then
	# ctest --show-only rewrites Testing/Temporary/LastTest.log: it runs on
	# a copy of the CTest files, not in the build CTest is running in.
	mkdir -p "$TMP/ctest"
	(cd "$DROVER_BUILD" && find . -name CTestTestfile.cmake -exec cp --parents {} "$TMP/ctest/" \;)
	(cd "$TMP/ctest" && ctest --show-only=json-v1) >"$TMP/tests.json"
	scripts=0
	while IFS=$'\t' read -r name timeout env script; do
		[[ $timeout != null ]] || fail "$name: no TIMEOUT (drv_test_timeout NAME SECONDS)"
		[[ " $env " == *" DROVER_TEST_TIMEOUT=$timeout "* ]] ||
			fail "$name: TIMEOUT $timeout, but DROVER_TEST_TIMEOUT not in its environment ($env): use drv_test_timeout"
		starts_budget "$script" || fail "$name: $script never calls budget_start (tests/lib/budget.sh)"
		scripts=$((scripts + 1))
	done < <(jq -r '.tests[] | . as $t
		| ([.command[] | select(test("\\.sh$"))] | first) as $script
		| select($script != null)
		| [$t.name,
		   ([$t.properties[]? | select(.name == "TIMEOUT") | .value] | first // null),
		   ([$t.properties[]? | select(.name == "ENVIRONMENT") | .value[]] | join(" ")),
		   $script] | @tsv' "$TMP/tests.json")
	((scripts >= 50)) || fail "only $scripts script tests found in the CTest list"
	ok "all $scripts script tests get their TIMEOUT in DROVER_TEST_TIMEOUT and start the watchdog"
else
	echo "# DROVER_BUILD or jq missing: the CTest list is not checked"
fi

# The script under test: a process (in namespace $NS when root), a cleanup
# that stops it and deletes the namespace, then MODE.
cat >"$TMP/child.sh" <<'EOF'
set -euo pipefail
TEST_NAME=child
LIB=$1 MODE=$2 OUT=$3 NS=$4
PID=
cleanup() {
	budget_end
	[[ $MODE != slow-cleanup ]] || sleep 4
	[[ -z $PID ]] || kill "$PID" 2>/dev/null || true
	[[ -z $PID ]] || wait "$PID" 2>/dev/null || true
	[[ -z $NS ]] || ip netns del "$NS"
	: >"$OUT/cleaned"
}
trap cleanup EXIT
source "$LIB/budget.sh"
budget_start
echo "$BUDGET_DIR" >"$OUT/dir"
if [[ -n $NS ]]; then
	ip netns add "$NS"
	ip netns exec "$NS" sleep 1000 &
else
	sleep 1000 &
fi
PID=$!
echo "$PID" >"$OUT/pid"
budget_step "the $MODE step"
case $MODE in
block) sleep 600 ;;
poll) while :; do sleep 0.2; done ;;
esac
EOF

# run_child MODE: run it with a 2 s budget (as a test of its own, not
# under this one's watchdog); sets rc, took (s) and OUT.
run_child() {
	local t0=$SECONDS
	OUT=$TMP/$1
	mkdir -p "$OUT"
	rc=0
	env -u DROVER_BUDGET_PID -u DROVER_TEST_TIMEOUT DROVER_TEST_BUDGET=2 \
		timeout 60 bash "$TMP/child.sh" "$LIB" "$1" "$OUT" "$NS" >"$OUT/out" 2>"$OUT/err" || rc=$?
	took=$((SECONDS - t0))
}
# cleaned_up: the child's cleanup ran, its process and namespace are gone.
cleaned_up() {
	local pid
	pid=$(cat "$OUT/pid")
	[[ -f $OUT/cleaned ]] || fail "$1: the cleanup did not run: $(cat "$OUT/err")"
	if kill -0 "$pid" 2>/dev/null && [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == "sleep 1000"* ]]; then
		fail "$1: its process $pid still runs"
	fi
	if [[ -n $NS ]] && ip netns list | grep -qw "$NS"; then
		fail "$1: its namespace $NS is still there"
	fi
}

# 2, 3. Stopped by the watchdog, cleaned up.
for mode in block poll; do
	run_child "$mode"
	((rc == 143)) || fail "$mode: exit $rc, not 143 (SIGTERM): $(cat "$OUT/err")"
	grep -q "^child: timed out after 2 s during the $mode step" "$OUT/err" ||
		fail "$mode: no 'timed out' message: $(cat "$OUT/err")"
	cleaned_up "$mode"
	((took < 20)) || fail "$mode: stopped after $took s"
	ok "$mode: stopped by its 2 s budget in $took s, exit 143, '$(grep -m1 'timed out' "$OUT/err")'; process${NS:+ and namespace} cleaned up"
done

# 4. Done in time: exit 0, no message, the watchdog ends too (it removes
# its directory when the script is gone).
run_child quick
((rc == 0)) || fail "quick: exit $rc: $(cat "$OUT/err")"
! grep -q "timed out" "$OUT/err" || fail "quick: $(cat "$OUT/err")"
cleaned_up quick
dir=$(cat "$OUT/dir")
for ((i = 0; i < 50; i++)); do
	[[ -d $dir ]] || break
	sleep 0.1
done
[[ ! -d $dir ]] || fail "quick: the watchdog still runs 5 s after the script ended"
ok "quick: done within the budget, exit 0, no message, the watchdog ended with it"

# 5. The budget runs out during a 4 s cleanup: no SIGTERM into it.
run_child slow-cleanup
((rc == 0)) || fail "slow-cleanup: exit $rc: $(cat "$OUT/err")"
cleaned_up slow-cleanup
! grep -q "timed out" "$OUT/err" || fail "slow-cleanup: $(cat "$OUT/err")"
ok "slow cleanup: the budget ran out during it, it finished undisturbed"
