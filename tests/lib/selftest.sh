#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# selftest.sh: end-to-end check of the test fixtures and helpers, on loopback
# only: berry-svc (built with gcc and clang, -Werror), a static build in OCI
# images made with umoci, pushed with skopeo to a throwaway docker-registry,
# manifests and blobs fetched back with curl and verified, the service run
# from the unpacked image, and berrys-db backup and migrations.
#
#   bash tests/lib/selftest.sh
#
# Stops at the first failure with a message, exit 1. Cleans up (only the PIDs
# it started, its temp dir) on every exit path. Ends with "N passed, 0 failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FIXTURES=$HERE/../fixtures
source "$HERE/registry.sh"
source "$HERE/mkimage.sh"

ACCEPT_HDR="Accept: $MKIMAGE_ACCEPT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/drover-selftest.XXXXXX")
PIDS=()
PASSED=0

cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	registry_stop "$TMP/registry" || true
	rm -rf "$TMP"
	if ((rc != 0)); then
		echo "selftest: FAILED (exit $rc) after $PASSED checks" >&2
		echo "selftest: $PASSED passed, 1 failed"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "selftest: FAIL: $*" >&2
	exit 1
}
ok() {
	PASSED=$((PASSED + 1))
	echo "ok $PASSED - $*"
}

# A port in 5100-5199 with nothing listening on 127.0.0.1, not in "$@".
pick_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((5100 + RANDOM % 100))
		[[ " $* " == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	fail "no free port in 5100-5199"
}

# http_get URL -> prints "STATUS BODY" (status 000 when nothing answers).
http_get() {
	curl -s --max-time 2 -o "$TMP/body" -w '%{http_code}' "$@" >"$TMP/status" 2>/dev/null || true
	echo "$(cat "$TMP/status") $(cat "$TMP/body" 2>/dev/null)"
}

expect_http() { # URL "STATUS BODY" [curl args...]
	local url=$1 want=$2 got
	shift 2
	got=$(http_get "$@" "$url")
	[[ $got == "$want" ]] || fail "$url: want '$want', got '$got'"
	ok "$url -> $want"
}

wait_http() { # URL: up to 5 s for any HTTP answer
	local i
	for ((i = 0; i < 50; i++)); do
		[[ $(http_get "$1") != 000* ]] && return 0
		sleep 0.1
	done
	fail "$1: no answer within 5 s"
}

wait_exit() { # PID WANT_STATUS: up to 5 s for the process to exit
	local pid=$1 want=$2 i rc=0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && fail "PID $pid still running after 5 s"
	wait "$pid" || rc=$?
	[[ $rc == "$want" ]] || fail "PID $pid exited $rc, want $want"
}

start_svc() { # DIR PORT [VAR=VALUE...] -> sets SVC_PID; runs with cwd DIR
	local dir=$1 port=$2
	shift 2
	(cd "$dir" && exec env "$@" "$BIN" --name berry-test --port "$port" \
		--listen-addr 127.0.0.1) >>"$TMP/svc.log" 2>&1 &
	SVC_PID=$!
	PIDS+=("$SVC_PID")
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

echo "selftest: working in $TMP"
for tool in docker-registry skopeo umoci sqlite3 curl jq gcc readelf; do
	command -v "$tool" >/dev/null || fail "$tool is not installed"
done

# --- berry-svc compiles cleanly ---
for cc in gcc clang; do
	command -v "$cc" >/dev/null || { echo "selftest: $cc missing, skipped"; continue; }
	"$cc" -std=c11 -Wall -Wextra -Werror -O2 -o "$TMP/berry-$cc" "$FIXTURES/berry-svc.c" ||
		fail "berry-svc does not build with $cc -Wall -Wextra -Werror"
	ok "berry-svc builds with $cc -Wall -Wextra -Werror"
done
BIN=$(mkimage_berry_bin) || fail "static build of berry-svc"
[[ $(readelf -l "$BIN") == *INTERP* ]] && fail "$BIN is not statically linked"
ok "static berry-svc cached at $BIN"

# --- registry, images, push ---
REG_PORT=$(pick_port)
SVC_PORT=$(pick_port "$REG_PORT")
registry_start "$TMP/registry" "$REG_PORT" || fail "registry_start"
ok "registry up on 127.0.0.1:$REG_PORT"

T0=$(date +%s%N)
mkimage_berry "$TMP/oci" berry 1.0.0 || fail "mkimage_berry 1.0.0"
mkimage_berry "$TMP/oci" berry 2.0.0 --unhealthy --pad-mb 4 || fail "mkimage_berry 2.0.0"
T1=$(date +%s%N)
D1=$(mkimage_push "$TMP/oci" 1.0.0 "$REG_PORT" berrys/berry) || fail "push 1.0.0"
D2=$(mkimage_push "$TMP/oci" 2.0.0 "$REG_PORT" berrys/berry) || fail "push 2.0.0"
T2=$(date +%s%N)
ok "built 2 images in $(((T1 - T0) / 1000000)) ms, pushed them in $(((T2 - T1) / 1000000)) ms"
[[ $D1 =~ ^sha256:[0-9a-f]{64}$ && $D2 =~ ^sha256:[0-9a-f]{64}$ && $D1 != "$D2" ]] ||
	fail "bad digests '$D1' '$D2'"
ok "pushed digests $D1 $D2"

mkimage_berry "$TMP/oci" berry 1.0.0 || fail "rebuild 1.0.0"
[[ $(mkimage_push "$TMP/oci" 1.0.0 "$REG_PORT" berrys/berry) == "$D1" ]] ||
	fail "rebuilding/re-pushing an unchanged image changed its digest"
ok "mkimage_berry and mkimage_push are idempotent"

REG=http://127.0.0.1:$REG_PORT/v2/berrys/berry
for pair in "1.0.0 $D1 1" "2.0.0 $D2 2"; do
	read -r tag digest nlayers <<<"$pair"
	ctype=$(curl -fsS --max-time 5 -H "$ACCEPT_HDR" -o "$TMP/m.json" -w '%{content_type}' \
		"$REG/manifests/$tag") || fail "GET manifest $tag"
	[[ sha256:$(sha256_of "$TMP/m.json") == "$digest" ]] || fail "manifest $tag body does not hash to $digest"
	# umoci omits the optional mediaType field: the registry's Content-Type tells.
	[[ $ctype == application/vnd.oci.image.manifest.v1+json ]] ||
		fail "manifest $tag served as '$ctype', not an OCI manifest"
	[[ $(jq '.layers | length' "$TMP/m.json") == "$nlayers" ]] || fail "manifest $tag: want $nlayers layers"
	cfg=$(jq -r .config.digest "$TMP/m.json")
	curl -fsS --max-time 5 -o "$TMP/c.json" "$REG/blobs/$cfg" || fail "GET config $tag"
	[[ sha256:$(sha256_of "$TMP/c.json") == "$cfg" ]] || fail "config blob of $tag corrupt"
	[[ $(jq -r '.config.Labels["org.opencontainers.image.version"]' "$TMP/c.json") == "$tag" &&
		$(jq -c .config.Entrypoint "$TMP/c.json") == '["/bin/berry-svc"]' ]] ||
		fail "config of $tag: wrong version label or entrypoint"
	for layer in $(jq -r '.layers[].digest' "$TMP/m.json"); do
		curl -fsS --max-time 10 -o "$TMP/l.bin" "$REG/blobs/$layer" || fail "GET layer $layer"
		[[ sha256:$(sha256_of "$TMP/l.bin") == "$layer" ]] || fail "layer $layer corrupt"
	done
	curl -fsS --max-time 5 -H "$ACCEPT_HDR" -o "$TMP/m2.json" "$REG/manifests/$digest" ||
		fail "GET manifest by digest $digest"
	ok "manifest $tag fetched by tag and digest, config and $nlayers layer(s) verified"
done

# --- berry-svc behaviour ---
mkdir -p "$TMP/run"
echo 9.9.9 >"$TMP/run/VERSION"
URL=http://127.0.0.1:$SVC_PORT
start_svc "$TMP/run" "$SVC_PORT"
wait_http "$URL/health"
expect_http "$URL/health" "200 ok"
expect_http "$URL/version" "200 9.9.9"
expect_http "$URL/name" "200 berry-test"
expect_http "$URL/error_rate" "200 0"
expect_http "$URL/fail" "200 failing"
expect_http "$URL/health" "503 unhealthy"
expect_http "$URL/recover" "200 recovered"
expect_http "$URL/health" "200 ok"
expect_http "$URL/fail" "200 failing" -X POST
expect_http "$URL/health" "503 unhealthy"
expect_http "$URL/recover" "200 recovered"
expect_http "$URL/error_rate?set=0.25" "200 0.25"
expect_http "$URL/error_rate" "200 0.5" -X POST -d 0.5
expect_http "$URL/nope" "404 not found"
(($(grep -c "GET /health status=" "$TMP/svc.log") == 5)) || fail "want one log line per /health request"
ok "one log line per request"
kill -TERM "$SVC_PID"
wait_exit "$SVC_PID" 0
ok "SIGTERM -> exit 0"

start_svc "$TMP/run" "$SVC_PORT" BERRY_VERSION=7.0 BERRY_UNHEALTHY=1 BERRY_ERROR_RATE=0.125
wait_http "$URL/health"
expect_http "$URL/health" "503 unhealthy"
expect_http "$URL/version" "200 7.0"
expect_http "$URL/error_rate" "200 0.125"
expect_http "$URL/crash" "200 crashing"
wait_exit "$SVC_PID" 3
ok "/crash -> exit 3"

start_svc "$TMP/run" "$SVC_PORT" BERRY_CRASH_AFTER_MS=300
wait_exit "$SVC_PID" 3
ok "BERRY_CRASH_AFTER_MS -> exit 3"

start_svc "$TMP/run" "$SVC_PORT" BERRY_START_DELAY_MS=700
sleep 0.2
[[ $(http_get "$URL/health") == 000* ]] || fail "BERRY_START_DELAY_MS: listening too early"
wait_http "$URL/health"
ok "BERRY_START_DELAY_MS delays listen"
kill -TERM "$SVC_PID"
wait_exit "$SVC_PID" 0

# The 2.0.0 image, unpacked, runs as the agent's exec driver will run it.
umoci unpack --image "$TMP/oci:2.0.0" "$TMP/bundle" >/dev/null || fail "umoci unpack 2.0.0"
ROOT=$TMP/bundle/rootfs
[[ -x $ROOT/bin/berry-svc && -f $ROOT/UNHEALTHY && $(cat "$ROOT/VERSION") == 2.0.0 ]] ||
	fail "2.0.0 rootfs lacks bin/berry-svc, UNHEALTHY or VERSION"
[[ $(stat -c %s "$ROOT/pad/padding.bin") == $((4 * 1024 * 1024)) ]] || fail "2.0.0 padding is not 4 MiB"
BIN=$ROOT/bin/berry-svc start_svc "$ROOT" "$SVC_PORT"
wait_http "$URL/health"
expect_http "$URL/health" "503 unhealthy"
expect_http "$URL/version" "200 2.0.0"
kill -TERM "$SVC_PID"
wait_exit "$SVC_PID" 0
ok "image 2.0.0 runs from its rootfs and starts unhealthy"

# --- berrys-db ---
DB=$TMP/db/berrys.db
BDB=(sh "$FIXTURES/berrys-db.sh" --db "$DB")
"${BDB[@]}" backup --out "$TMP/bk" --verify >/dev/null 2>&1 && fail "backup of a missing db succeeded"
"${BDB[@]}" init >/dev/null || fail "berrys-db init"
out=$("${BDB[@]}" backup --out "$TMP/bk" --verify) || fail "berrys-db backup --verify"
bk=$(tail -n 1 <<<"$out")
[[ -f $bk && $(sqlite3 "$bk" 'SELECT count(*) FROM berries;') == 2 ]] || fail "backup $bk lacks rows"
ok "berrys-db backup --verify -> $bk"
"${BDB[@]}" migrate up 42 >/dev/null || fail "migrate up 42"
[[ $("${BDB[@]}" version) == 42 && -n $(sqlite3 "$DB" ".tables plans") ]] || fail "up 42 did not create plans"
"${BDB[@]}" migrate up 42 >/dev/null || fail "second migrate up 42 (idempotent)"
ok "berrys-db migrate up 42 (twice)"
"${BDB[@]}" migrate down 41 >/dev/null || fail "migrate down 41"
[[ $("${BDB[@]}" version) == 41 && -z $(sqlite3 "$DB" ".tables plans") ]] || fail "down 41 did not drop plans"
ok "berrys-db migrate down 41"
rc=0
BERRYS_DB_FAIL_MIGRATION=1 "${BDB[@]}" migrate up 42 >/dev/null 2>&1 || rc=$?
[[ $rc == 1 && $("${BDB[@]}" version) == 41 ]] || fail "BERRYS_DB_FAIL_MIGRATION: rc=$rc, want 1 and no change"
ok "BERRYS_DB_FAIL_MIGRATION=1 fails migrate up without changes"
rc=0
"${BDB[@]}" migrate sideways 3 >/dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "bad usage exit $rc, want 2"
ok "berrys-db usage error -> exit 2"

echo "selftest: $PASSED passed, 0 failed"
