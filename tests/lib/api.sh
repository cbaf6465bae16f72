# shellcheck shell=bash
# api.sh: helpers for tests that talk to the HTTP API with curl (source me).
#
#   api_req METHOD PATH [TOKEN] [curl args...]
#       one request to $API_URL; the status goes to stdout, the body to
#       $API_BODY, the response headers to $API_HEADERS
#   api_field JQ       jq expression on the last body (raw output)
#   expect_eq WHAT GOT WANT   fail the test with a message when they differ
#   wait_for SECONDS CMD...   poll CMD every 0.1 s until it succeeds (bounded)
#
#   api_test_begin NAME TOOL...
#       the start of a test of a server of its own (api_testd): skip (77)
#       unless each TOOL is installed; API_TMP (a private temp dir, removed
#       at exit), api_init, db (the server's SQLite file), tok ROLE NAME (a
#       new token); at exit the server (SERVER_PID) and the background
#       clients (BG_PIDS) are stopped; the time budget (budget.sh)
#   api_start_testd ARGS...   start api_testd on $db (SERVER_PID, API_URL)
#
# Set API_URL (http://127.0.0.1:PORT) and API_TMP (a private temp dir), then api_init.

api_req() {
	local method=$1 path=$2 token=${3:-}
	shift 3 2>/dev/null || shift $#
	local auth=()
	[[ -n $token ]] && auth=(-H "Authorization: Bearer $token")
	curl -sS --max-time 20 -o "$API_BODY" -D "$API_HEADERS" -w '%{http_code}' \
		-X "$method" "${auth[@]}" "$@" "$API_URL$path"
}

api_field() {
	jq -r "$1" <"$API_BODY"
}

# Call after setting API_TMP.
api_init() {
	API_BODY=$API_TMP/body
	API_HEADERS=$API_TMP/headers
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

expect_eq() {
	local what=$1 got=$2 want=$3
	if [[ $got != "$want" ]]; then
		echo "FAIL: $what: got '$got', want '$want'" >&2
		[[ -f ${API_BODY:-/nonexistent} ]] && { echo "last body:" >&2; head -c 2000 "$API_BODY" >&2; echo >&2; }
		exit 1
	fi
	echo "ok: $what"
}

wait_for() {
	local secs=$1
	shift
	local i
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

api_test_begin() {
	local name=$1 tool
	shift
	for tool in "$@"; do
		command -v "$tool" >/dev/null || {
			echo "SKIP: $tool is not installed (make deps)" >&2
			exit 77
		}
	done
	API_TMP=$(mktemp -d "/tmp/drover-$name.XXXXXX")
	api_init
	SERVER_PID=
	BG_PIDS=()
	db=$API_TMP/droverd.db
	trap _api_cleanup EXIT
	# shellcheck source=budget.sh
	source "$(dirname "${BASH_SOURCE[0]}")/budget.sh"
	budget_start
}

_api_cleanup() {
	local p
	budget_end
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	[[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
	rm -rf "$API_TMP"
}

tok() { "$DROVERD" token create --db "$db" --role "$1" --name "$2" 2>/dev/null; }

# api_start_testd [ARGS...]: $API_TESTD on $db with ARGS, its log in
# $API_TMP/server.log; sets SERVER_PID, API_PORT and API_URL once it listens.
api_start_testd() {
	rm -f "$API_TMP/port"
	"$API_TESTD" --db "$db" --port-file "$API_TMP/port" "$@" 2>>"$API_TMP/server.log" &
	SERVER_PID=$!
	wait_for 20 test -s "$API_TMP/port" || { tail -20 "$API_TMP/server.log"; fail "server did not start"; }
	API_PORT=$(cat "$API_TMP/port")
	API_URL=http://127.0.0.1:$API_PORT
}
