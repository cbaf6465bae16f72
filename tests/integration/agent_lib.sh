# shellcheck shell=bash
# agent_lib.sh: shared helpers for the agent runtime integration tests
# (source me after setting TEST_NAME). Gives: $TMP (removed on exit), ok/fail,
# cleanup hooks (at_exit CMD), run_step (drover-agent run-step with --dir),
# pick_port, wait_for (bounded polling), and last_result/field (jq on the
# JSON lines run-step prints).
set -euo pipefail

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LIB_DIR/../.." && pwd)
AGENT=${DROVER_AGENT:?set DROVER_AGENT to the drover-agent binary (ctest does)}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/drover-${TEST_NAME:-it}.XXXXXX")
PASSED=0
EXIT_CMDS=()

at_exit() { EXIT_CMDS+=("$*"); }

_cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	for ((i = ${#EXIT_CMDS[@]} - 1; i >= 0; i--)); do
		eval "${EXIT_CMDS[$i]}" >/dev/null 2>&1 || true
	done
	if ((rc != 0 && rc != 77)); then
		echo "$TEST_NAME: FAILED (exit $rc) after $PASSED checks; agent logs:" >&2
		tail -n 30 "$TMP"/*.err 2>/dev/null | cut -c1-400 >&2 || true
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "$TEST_NAME: FAIL: $*" >&2
	exit 1
}
ok() {
	PASSED=$((PASSED + 1))
	echo "ok $PASSED - $*"
}
skip() {
	echo "" >&2
	echo "########################################################################" >&2
	echo "# SKIPPED $TEST_NAME: $*" >&2
	echo "########################################################################" >&2
	exit 77
}

# A port with nothing listening on 127.0.0.1, in 20000-29999, not in "$@".
pick_port() {
	local p i
	for ((i = 0; i < 500; i++)); do
		p=$((20000 + RANDOM % 10000))
		[[ " $* " == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	fail "no free port"
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	return 1
}

# run_step NAME JSON [ARGS...]: write JSON to $TMP/NAME.json, run it with
# --dir $AGENT_DIR; output in $TMP/NAME.out (JSON lines), log in NAME.err.
# Returns run-step's exit status.
AGENT_DIR=$TMP/agent
run_step() {
	local name=$1 json=$2 rc=0
	shift 2
	printf '%s\n' "$json" >"$TMP/$name.json"
	"$AGENT" run-step "$TMP/$name.json" --dir "$AGENT_DIR" "$@" \
		>"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
	return "$rc"
}

# final NAME: the step's final report (last succeeded/failed line).
final() { jq -c 'select(.result == "succeeded" or .result == "failed")' "$TMP/$1.out" | tail -n 1; }
# field NAME JQ: evaluate JQ on the final report of NAME.
field() { final "$1" | jq -r "$2"; }

# status: releases as JSON (one line) from run-step --status.
status() { "$AGENT" run-step --status --dir "$AGENT_DIR" 2>>"$TMP/status.err" | jq -c 'select(.result == "releases")'; }
# has FILE FILTER: true when some JSON line of FILE matches the jq condition.
has() { jq -s -e "map(select($2)) | length > 0" "$1" >/dev/null; }
