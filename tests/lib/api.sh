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
