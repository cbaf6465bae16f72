# shellcheck shell=bash
# deploy_lib.sh: helpers for deployment tests with a real droverd, real
# drover-agents on 127.0.0.1 and a real docker-registry (source me after
# setting TEST_NAME). Builds on link_lib.sh (coord_*, agent_*, wait_for, ok,
# fail, sql) and the image helpers in tests/lib.
#
#   deploy_setup                  registry + berry images 1.0.0, 2.0.0 and
#                                 3.0.0 (starts unhealthy) as $REG/berrys/berry
#   deploy_coord                  droverd (fast link timers, insecure registry)
#   deploy_agent NAME [LABEL...] [-- INIT_ARGS...]  an agent (agent_init NAME --label LABEL... INIT_ARGS), accepted and connected
#   plan_rolling FILE VERSION [STEP_DELAY_MS]
#                                 a two-tier rolling plan of 3 services
#   svc_version NAME              GET /version of service NAME (its port)
#   dep_get ID JQ                 jq on GET /v1/deployments/ID
#   svc_pid AGENT SERVICE         pid of the service's process (pid file)
#
# Services run one per agent (they share the loopback, so each has its own
# port): alpha on core-1, beta on core-2 (tier core), gamma on edge-1 (tier
# edge). Services the agents started are stopped when the test ends.
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=link_lib.sh
source "$REPO_DIR/tests/integration/link_lib.sh"
# shellcheck source=../lib/registry.sh
source "$REPO_DIR/tests/lib/registry.sh"
# shellcheck source=../lib/mkimage.sh
source "$REPO_DIR/tests/lib/mkimage.sh"

REG_DIR=
AGENT_NAMES=()
declare -A SVC_PORT=()

# Services started by our agents outlive them (the agent re-adopts them):
# stop each one whose pid file still names the same process.
_stop_services() {
	local f pid start now name
	for name in "${AGENT_NAMES[@]}"; do
		for f in "$TMP/$name"/state/run/*.pid; do
			[[ -f $f ]] || continue
			read -r pid start _ <"$f" || continue
			[[ $pid =~ ^[0-9]+$ ]] || continue
			now=$(awk '{print $22}' "/proc/$pid/stat" 2>/dev/null) || continue
			[[ -z $start || $now == "$start" ]] || continue
			kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		done
	done
}

_rc() { return "$1"; }
# Agents first (an agent restarts a service that exits), then the services,
# the registry, and link_lib's cleanup with the test's exit status. Nothing
# here may fail: the trap runs under set -e.
_deploy_cleanup() {
	local rc=$? name
	budget_end
	for name in "${AGENT_NAMES[@]}"; do
		if [[ -n ${PIDS[$name]:-} ]]; then
			_stop_pid "${PIDS[$name]}"
			unset "PIDS[$name]"
		fi
	done
	_stop_services
	if [[ -n $REG_DIR ]]; then registry_stop "$REG_DIR" >/dev/null 2>&1 || true; fi
	_rc "$rc" || _cleanup
	_cleanup
}
trap _deploy_cleanup EXIT

deploy_setup() {
	local t
	for t in docker-registry skopeo umoci; do
		command -v "$t" >/dev/null || {
			echo "SKIPPED $TEST_NAME: $t is not installed (make deps)" >&2
			exit 77
		}
	done
	REG_PORT=$(pick_port)
	REG_DIR=$TMP/registry
	registry_start "$REG_DIR" "$REG_PORT" >"$TMP/registry-start.log" 2>&1 || fail "registry_start"
	REG=127.0.0.1:$REG_PORT
	mkimage_berry "$TMP/oci" berry 1.0.0 >/dev/null 2>&1 || fail "mkimage 1.0.0"
	mkimage_berry "$TMP/oci" berry 2.0.0 >/dev/null 2>&1 || fail "mkimage 2.0.0"
	mkimage_berry "$TMP/oci" berry 3.0.0 --unhealthy >/dev/null 2>&1 || fail "mkimage 3.0.0"
	for t in 1.0.0 2.0.0 3.0.0; do
		mkimage_push "$TMP/oci" "$t" "$REG_PORT" berrys/berry >/dev/null 2>&1 ||
			fail "push $t"
	done
	SVC_PORT[alpha]=$(pick_port "$REG_PORT")
	SVC_PORT[beta]=$(pick_port "$REG_PORT" "${SVC_PORT[alpha]}")
	SVC_PORT[gamma]=$(pick_port "$REG_PORT" "${SVC_PORT[alpha]}" "${SVC_PORT[beta]}")
}

deploy_coord() {
	coord_init
	set_opt "$COORD/droverd.yaml" insecure_registry true
	# URLs the test's plans make droverd request (webhooks, analysis.http)
	[[ -z ${DEPLOY_OUTBOUND:-} ]] || set_opt "$COORD/droverd.yaml" allow "$DEPLOY_OUTBOUND"
	coord_start
}

deploy_agent() {
	local name=$1 args=()
	shift
	while (($#)) && [[ $1 != -- ]]; do
		args+=(--label "$1")
		shift
	done
	(($# == 0)) || shift
	agent_init "$name" "${args[@]}" "$@"
	set_opt "$TMP/$name/agent.yaml" insecure_registry true
	AGENT_NAMES+=("$name")
	agent_start "$name"
	wait_for 20 is_state "$name" pending || fail "agent $name not pending"
	"$CLI" agents accept "$name" >/dev/null || fail "accept $name"
	wait_for 20 is_state "$name" connected || fail "agent $name not connected"
}

# _svc NAME HOST PORT DELAY_MS VERSION: one service of the plan.
_svc() {
	cat <<EOF
      - name: $1
        image: $REG/berrys/berry:$5
        hosts: [$2]
        command: [/bin/berry-svc, --name, $1, --port, "$3", --listen-addr, 127.0.0.1]
        env: { BERRY_START_DELAY_MS: "$4" }
        health: { http: { port: $3 } }
EOF
}

plan_rolling() {
	local file=$1 version=$2 delay=${3:-0}
	cat >"$file" <<EOF
deployment: berrys
version: "$version"
defaults:
  driver: exec
  strategy: { type: rolling, max_unavailable: 1 }
  stop_grace: 2s
  health:
    http: { port: 8080, path: /health }
    interval: 200ms
    timeout: 1s
    healthy_threshold: 2
    unhealthy_threshold: 2
    deadline: 6s
  failure: { max_failed_hosts: 0, rollback: deployment }
tiers:
  - name: core
    services:
$(_svc alpha core-1 "${SVC_PORT[alpha]}" "$delay" "$version")
$(_svc beta core-2 "${SVC_PORT[beta]}" "$delay" "$version")
  - name: edge
    services:
$(_svc gamma edge-1 "${SVC_PORT[gamma]}" "$delay" "$version")
EOF
}

svc_version() { curl -s --max-time 2 "http://127.0.0.1:${SVC_PORT[$1]}/version" 2>/dev/null || true; }
all_on() {
	local s
	for s in alpha beta gamma; do
		[[ $(svc_version "$s") == "$1" ]] || return 1
	done
}
dep_get() {
	curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" \
		"$DROVER_ADDR/v1/deployments/$1" | jq -r "$2"
}
dep_state_is() { [[ $(dep_get "$1" .state) == "$2" ]]; }
svc_pid() { cut -d' ' -f1 "$TMP/$1/state/run/$2.pid" 2>/dev/null; }
# dep_post TOKEN FILE QUERY OUT: POST the plan FILE to /v1/deployments?QUERY;
# prints the status, the answer goes to OUT.
dep_post() {
	curl -sS --max-time 30 -o "$4" -w '%{http_code}' -X POST -H "Authorization: Bearer $1" \
		--data-binary "@$2" "$DROVER_ADDR/v1/deployments?$3"
}
# dep_decide TOKEN ID VERB COMMENT OUT: approve or deny (VERB) deployment ID.
dep_decide() {
	curl -sS --max-time 30 -o "$5" -w '%{http_code}' -X POST -H "Authorization: Bearer $1" \
		--data "$(jq -nc --arg c "$4" '{comment: $c}')" "$DROVER_ADDR/v1/deployments/$2/$3"
}
