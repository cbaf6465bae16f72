# shellcheck shell=bash
# link_lib.sh: helpers for the control-link integration tests (source me
# after setting TEST_NAME). A real droverd and real drover-agents on
# 127.0.0.1, random free ports, a private temp dir removed on exit, and only
# the PIDs this test started are ever signalled.
#
#   coord_init [droverd init args]   droverd init in $TMP/coord, fast timers (and the
#                                    array COORD_INIT_ARGS, e.g. --postgres DSN)
#   coord_start / coord_stop [SIG]   run / stop droverd (waits until it serves)
#   agent_init NAME [init args]      drover-agent init in $TMP/NAME
#   agent_start NAME / agent_stop NAME [SIG]
#   agent_state NAME                 pending|connected|disconnected|rejected (API)
#   instruct NAME STEP CMD...        queue a RUN_HOOK through the API (admin)
#   coord_stat JQ / agent_stat NAME JQ   jq on the link counters
#   sql QUERY                        sqlite3 on the coordinator's database
#   wait_for SECONDS CMD...          bounded polling every 0.1 s
set -euo pipefail

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DROVERD=${DROVERD:?set DROVERD to the droverd binary (ctest does)}
AGENT=${DROVER_AGENT:?set DROVER_AGENT to the drover-agent binary (ctest does)}
CLI=${DROVER_CLI:?set DROVER_CLI to the drover binary (ctest does)}
PROBE=${DROVER_BUILD:?set DROVER_BUILD (ctest does)}/tests/integration/linkprobe
TMP=$(mktemp -d "${TMPDIR:-/tmp}/drover-${TEST_NAME:-link}.XXXXXX")
declare -A PIDS=()
COORD_PID=

for tool in jq curl sqlite3 openssl; do
	command -v "$tool" >/dev/null || {
		echo "SKIPPED $TEST_NAME: $tool is not installed (make deps)" >&2
		exit 77
	}
done

# Services run as drover-svc by default; the drover-agent package makes it.
# shellcheck source=../lib/svcuser.sh
source "$LIB_DIR/../lib/svcuser.sh"
# pick_port, reserved against the tests running beside this one
# shellcheck source=../lib/ports.sh
source "$LIB_DIR/../lib/ports.sh"
svcuser_ensure || {
	echo "$TEST_NAME: cannot create the service user drover-svc" >&2
	exit 1
}

_stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	kill -CONT "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

_cleanup() {
	local rc=$? name
	budget_end
	for name in "${!PIDS[@]}"; do
		_stop_pid "${PIDS[$name]}"
	done
	[[ -n $COORD_PID ]] && _stop_pid "$COORD_PID"
	declare -F port_release >/dev/null && port_release
	if ((rc != 0 && rc != 77)); then
		echo "$TEST_NAME: FAILED (exit $rc) after $PASSED checks; last log lines:" >&2
		for f in "$TMP"/*.log; do
			[[ -f $f ]] || continue
			echo "== $f" >&2
			tail -n 25 "$f" | cut -c1-300 >&2
		done
	fi
	if [[ -n ${KEEP_TMP:-} ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
	exit "$rc"
}
trap _cleanup EXIT
# shellcheck source=../lib/budget.sh
source "$LIB_DIR/../lib/budget.sh"
budget_start

# shellcheck source=../lib/check.sh
source "$LIB_DIR/../lib/check.sh"

# set_opt FILE KEY VALUE: replace the value of the (indented) YAML key.
set_opt() {
	sed -i -E "s|^( *)$2:.*|\1$2: $3|" "$1"
	grep -q -E "^ *$2: $3\$" "$1" || fail "cannot set $2 in $1"
}

COORD=$TMP/coord
coord_init() {
	LINK_PORT=$(pick_port)
	API_PORT=$(pick_port "$LINK_PORT")
	LINK_URL=${LINK_URL:-tcp://127.0.0.1:$LINK_PORT}
	"$DROVERD" init --dir "$COORD" --listen "$LINK_URL" --api "127.0.0.1:$API_PORT" "$@" \
		${COORD_INIT_ARGS[@]+"${COORD_INIT_ARGS[@]}"} \
		>"$TMP/init.log" 2>&1 || fail "droverd init: $(cat "$TMP/init.log")"
	set_opt "$COORD/droverd.yaml" poll_timeout 2s
	set_opt "$COORD/droverd.yaml" liveness_timeout 5s
	set_opt "$COORD/droverd.yaml" pending_retry 300ms
	export DROVER_ADDR=http://127.0.0.1:$API_PORT
	export DROVER_TOKEN_FILE=$COORD/admin.token
	unset DROVER_TOKEN
	ADMIN_TOKEN=$(cat "$COORD/admin.token")
}

healthy() { curl -sf --max-time 2 "$DROVER_ADDR/healthz" >/dev/null; }
link_open() { (exec 3<>"/dev/tcp/127.0.0.1/$LINK_PORT") 2>/dev/null; }

coord_start() {
	"${COORD_WRAP[@]}" "$DROVERD" --config "$COORD/droverd.yaml" >>"$TMP/coord.log" 2>&1 &
	COORD_PID=$!
	wait_for "${COORD_START_SECS:-60}" healthy || fail "droverd did not come up"
	wait_for 20 link_open || fail "droverd does not listen on $LINK_PORT"
}

coord_stop() {
	local sig=${1:-TERM}
	kill "-$sig" "$COORD_PID"
	wait "$COORD_PID" 2>/dev/null || true
	COORD_PID=
}

agent_init() {
	local name=$1
	shift
	"$AGENT" init --dir "$TMP/$name" --coordinator "$LINK_URL" \
		--coordinator-key "$COORD/coordinator.pub" --id "$name" "$@" \
		>"$TMP/$name-init.log" 2>&1 || fail "agent init $name: $(cat "$TMP/$name-init.log")"
	set_opt "$TMP/$name/agent.yaml" reconnect_min 100ms
	set_opt "$TMP/$name/agent.yaml" reconnect_max 1s
	set_opt "$TMP/$name/agent.yaml" request_timeout 3s
}

agent_start() {
	local name=$1
	"${AGENT_WRAP[@]}" "$AGENT" --config "$TMP/$name/agent.yaml" >>"$TMP/$name.log" 2>&1 &
	PIDS[$name]=$!
}

agent_stop() {
	local name=$1 sig=${2:-TERM}
	kill "-$sig" "${PIDS[$name]}"
	wait "${PIDS[$name]}" 2>/dev/null || true
	unset "PIDS[$name]"
}

COORD_WRAP=()
AGENT_WRAP=()

agents_json() { "$CLI" agents --json; }
agent_state() { agents_json | jq -r --arg id "$1" '.[] | select(.id == $id) | .state'; }
is_state() { [[ $(agent_state "$1") == "$2" ]]; }

# instruct NAME STEP CMD...: prints the API's answer (JSON).
instruct() {
	local name=$1 step=$2
	shift 2
	local run='[]' arg
	for arg in "$@"; do
		run=$(jq -c --arg a "$arg" '. + [$a]' <<<"$run")
	done
	jq -n --arg step "$step" --argjson run "$run" '{step_id: $step, run: $run}' |
		curl -sS --max-time 10 -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
			--data-binary @- "$DROVER_ADDR/v1/agents/$name/instructions"
}

coord_stat() { jq -r "$1" "$COORD/link-stats.json"; }
agent_stat() { jq -r "$2" "$TMP/$1/state/link-stats.json"; }
agent_status() { jq -r "$2" "$TMP/$1/state/link-status.json"; }
stat_at_least() { [[ $(coord_stat "$1") -ge $2 ]]; }
agent_stat_at_least() { [[ $(agent_stat "$1" "$2") -ge $3 ]]; }
sql() { sqlite3 -cmd '.timeout 5000' "$COORD/droverd.db" "$1"; }
lines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }
has_lines() { [[ $(lines "$1") -eq $2 ]]; }
