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
EXIT_CMDS=()

at_exit() { EXIT_CMDS+=("$*"); }

_cleanup() {
	local rc=$? i
	budget_end
	for ((i = ${#EXIT_CMDS[@]} - 1; i >= 0; i--)); do
		eval "${EXIT_CMDS[$i]}" >/dev/null 2>&1 || true
	done
	declare -F port_release >/dev/null && port_release
	if ((rc != 0 && rc != 77)); then
		echo "$TEST_NAME: FAILED (exit $rc) after $PASSED checks; agent logs:" >&2
		tail -n 30 "$TMP"/*.err 2>/dev/null | cut -c1-400 >&2 || true
	fi
	if [[ -n ${DROVER_KEEP_TMP:-} ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
	exit "$rc"
}
trap _cleanup EXIT
# shellcheck source=../lib/budget.sh
source "$REPO_DIR/tests/lib/budget.sh"
budget_start

# shellcheck source=../lib/check.sh
source "$REPO_DIR/tests/lib/check.sh"
skip() {
	echo "" >&2
	echo "########################################################################" >&2
	echo "# SKIPPED $TEST_NAME: $*" >&2
	echo "########################################################################" >&2
	exit 77
}

# pick_port, reserved against the tests running beside this one
# shellcheck source=../lib/ports.sh
source "$REPO_DIR/tests/lib/ports.sh"

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

# --- registry and images ---
# shellcheck source=../lib/registry.sh
source "$REPO_DIR/tests/lib/registry.sh"
# shellcheck source=../lib/mkimage.sh
source "$REPO_DIR/tests/lib/mkimage.sh"
# shellcheck source=../lib/svcuser.sh
source "$REPO_DIR/tests/lib/svcuser.sh"
svcuser_ensure || fail "cannot create the service user drover-svc"

need_tools() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || skip "$t is not installed (make deps)"
	done
}

# setup_registry: a docker-registry on 127.0.0.1:$REG_PORT, stopped on exit.
setup_registry() {
	need_tools docker-registry skopeo umoci jq curl
	REG_PORT=$(pick_port)
	REG_DIR=$TMP/registry
	registry_start "$REG_DIR" "$REG_PORT" || fail "registry_start"
	at_exit "registry_stop '$REG_DIR'"
	REG=127.0.0.1:$REG_PORT
}

# push_berry VAR VERSION [mkimage_berry ARGS...]: berry-svc VERSION as an
# image in $TMP/oci, pushed to the test registry as berrys/berry:VERSION;
# VAR is set to its digest.
push_berry() {
	local var=$1 ver=$2 digest
	shift 2
	mkimage_berry "$TMP/oci" berry "$ver" "$@" || fail "mkimage $ver"
	digest=$(mkimage_push "$TMP/oci" "$ver" "$REG_PORT" berrys/berry) || fail "push $ver"
	printf -v "$var" '%s' "$digest"
}

# setup_berry: the start the exec driver tests share: the registry, berry
# 1.0.0 and 2.0.0 ($D1, $D2), a port for it ($PORT, $URL), and the service
# stopped through the agent when the test ends.
setup_berry() {
	setup_registry
	push_berry D1 1.0.0
	push_berry D2 2.0.0
	PORT=$(pick_port)
	# shellcheck disable=SC2034 # (the tests' URL)
	URL=http://127.0.0.1:$PORT
	stop_on_exit berry
}
# svc_pid: the pid berry's pid file names ("" when there is none).
svc_pid() { cut -d' ' -f1 "$AGENT_DIR/state/run/berry.pid" 2>/dev/null || true; }

# mklayout DIR TAG MEDIATYPE LAYERFILE...: a hand-made OCI image layout whose
# layers are the given files (already compressed as MEDIATYPE says).
mklayout() {
	local dir=$1 tag=$2 mt=$3 f d s diffs="[]" layers="[]" cfg cd cs m md ms
	shift 3
	mkdir -p "$dir/blobs/sha256"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
	for f in "$@"; do
		d=$(sha256sum "$f" | cut -d' ' -f1)
		s=$(stat -c %s "$f")
		cp "$f" "$dir/blobs/sha256/$d"
		layers=$(jq -c --arg d "sha256:$d" --argjson s "$s" --arg mt "$mt" \
			'. + [{mediaType:$mt, digest:$d, size:$s}]' <<<"$layers")
		diffs=$(jq -c --arg d "sha256:$d" '. + [$d]' <<<"$diffs")
	done
	cfg=$(jq -cn --argjson diffs "$diffs" \
		'{architecture:"amd64", os:"linux", config:{Entrypoint:["/bin/sh"]}, rootfs:{type:"layers", diff_ids:$diffs}}')
	cd=$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
	cs=$(printf '%s' "$cfg" | wc -c)
	printf '%s' "$cfg" >"$dir/blobs/sha256/$cd"
	m=$(jq -cn --arg cd "sha256:$cd" --argjson cs "$cs" --argjson layers "$layers" \
		'{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json", config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$cd, size:$cs}, layers:$layers}')
	md=$(printf '%s' "$m" | sha256sum | cut -d' ' -f1)
	ms=$(printf '%s' "$m" | wc -c)
	printf '%s' "$m" >"$dir/blobs/sha256/$md"
	jq -cn --arg md "sha256:$md" --argjson ms "$ms" --arg tag "$tag" \
		'{schemaVersion:2, manifests:[{mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$md, size:$ms, annotations:{"org.opencontainers.image.ref.name":$tag}}]}' \
		>"$dir/index.json"
	echo "sha256:$md"
}

# push_layout DIR TAG NAME: push oci:DIR:TAG to the test registry, print the digest.
push_layout() {
	skopeo --insecure-policy copy -q --dest-tls-verify=false --preserve-digests \
		"oci:$1:$2" "docker://$REG/$3:$2" >&2 || fail "skopeo push $1:$2"
	curl -fsS -I -H "Accept: $MKIMAGE_ACCEPT" "http://$REG/v2/$3/manifests/$2" |
		tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }'
}

# svc_json STEP ACTION NAME VERSION DIGEST PORT [EXTRA_SERVICE_JSON]: an
# instruction for berry-svc from $REG/berrys/NAME.
svc_json() {
	local step=$1 action=$2 name=$3 ver=$4 digest=$5 port=$6 extra=${7:-{\}}
	jq -cn --arg step "$step" --arg action "$action" --arg name "$name" --arg ver "$ver" \
		--arg ref "$REG/berrys/$name:$ver" --arg digest "$digest" --argjson port "$port" \
		--argjson extra "$extra" \
		'{action:$action, step_id:$step, deployment_id:"it", seq:1,
		  service:({name:$name, version:$ver, image:{reference:$ref, digest:$digest},
		    command:["/bin/berry-svc","--name",$name,"--port",($port|tostring),"--listen-addr","127.0.0.1"],
		    port:$port, stop_grace_ms:3000,
		    health:{kind:"http", path:"/health", interval_ms:150, timeout_ms:1000,
		            healthy_threshold:2, unhealthy_threshold:2, deadline_ms:8000}} + $extra)}'
}

# simple_json STEP ACTION NAME: an instruction naming only the service.
simple_json() { jq -cn --arg s "$1" --arg a "$2" --arg n "$3" '{action:$a, step_id:$s, service:{name:$n}}'; }

# http_body URL: the body, or "" when nothing answers.
http_body() { curl -s --max-time 2 "$1" 2>/dev/null || true; }

# rel NAME JQ: evaluate JQ on the release of service NAME in run-step NAME's final report.
rel() { field "$1" "[.releases[] | select(.slot == \"${3:-}\")][0] | $2"; }

# stop_on_exit NAME: stop service NAME through the agent when the test ends.
stop_on_exit() {
	simple_json "cleanup-$1-$RANDOM" stop "$1" >"$TMP/cleanup-$1.json"
	at_exit "\"$AGENT\" run-step '$TMP/cleanup-$1.json' --dir '$AGENT_DIR'"
}

# gone PID: the process no longer runs (exited, or a zombie awaiting its reaper).
gone() { ! kill -0 "$1" 2>/dev/null || [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]; }
