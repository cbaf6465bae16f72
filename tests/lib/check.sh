# shellcheck shell=bash
# check.sh: the checks the integration libraries share (agent_lib.sh,
# link_lib.sh; source after setting TEST_NAME):
#
#   fail MSG              "$TEST_NAME: FAIL: MSG", exit 1 (the EXIT trap cleans up)
#   ok MSG                a passed check: "ok N - MSG" ($PASSED counts them)
#   wait_for SECS CMD...  run CMD (output dropped) every 0.1 s until it
#                         succeeds, at most SECS seconds
PASSED=0

fail() {
	echo "$TEST_NAME: FAIL: $*" >&2
	exit 1
}
ok() {
	PASSED=$((PASSED + 1))
	echo "ok $PASSED - $*"
	budget_passed "ok $PASSED - $*"
}

wait_for() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	return 1
}
