# shellcheck shell=bash
# drover.sh: droverd in the control namespace, one drover-agent per host, and
# the drover CLI run from inside the control namespace.
#
#   drover_control_init [INIT ARGS...]
#       droverd init --dir $E2E_RUN/droverd --listen tcp://<control>:7700
#       --api <control>:7780 --enroll-token [ARGS]; test timers (link
#       poll 2 s, liveness 5 s, pending retry 300 ms); with HAProxy up
#       (haproxy_up first) the balancer "edge" on its admin socket, the
#       name the plans' traffic sections use; exports DROVER_ADDR,
#       DROVER_TOKEN_FILE, DROVERD_DIR; state keys droverd_dir, droverd_api,
#       droverd_link
#   drover_control_start   start droverd (process "droverd"); wait for /healthz
#   drover_agent_init HOST [INIT ARGS...]   drover-agent init --dir
#       $E2E_RUN/agents/HOST --id HOST --coordinator <link> with the
#       coordinator's key and the enrollment token (accepted at once); labels
#       from the host name: core-N/supporting-N/ui-N get tier=..., db-N role=db,
#       seta-N/setb-N color=a/color=b
#   drover_agent_start HOST   start it (process "agent-HOST"); a host with
#                             $E2E_RUN/fs/HOST/mounts ("SRC DST" lines) gets
#                             them bind-mounted in a mount namespace of its own
#   drover_agents_up HOST...  init + start each, then wait until all are
#                             connected (30 s)
#   drover_cli ARGS...        the drover CLI inside the control namespace
#   drover_agent_state ID     pending|connected|disconnected|rejected
#   drover_wait_agents STATE TIMEOUT_S ID...
#   drover_conf_set FILE KEY VALUE   set an (indented) YAML key in a config

DROVER_LINK_PORT=${DROVER_LINK_PORT:-7700}
DROVER_API_PORT=${DROVER_API_PORT:-7780}

drover_conf_set() {
	sed -i -E "s|^( *)$2:.*|\1$2: $3|" "$1"
	grep -q -E "^ *$2: $3\$" "$1" || {
		echo "e2e: cannot set $2 in $1" >&2
		return 1
	}
}

drover_control_init() {
	local ctl bin
	bin=$(e2e_bin droverd) || return 1
	ctl=$(addr_of control) || return 1
	DROVERD_DIR=$E2E_RUN/droverd
	DROVER_ADDR=http://$ctl:$DROVER_API_PORT
	DROVER_TOKEN_FILE=$DROVERD_DIR/admin.token
	export DROVERD_DIR DROVER_ADDR DROVER_TOKEN_FILE
	unset DROVER_TOKEN
	in_ns control "$bin" init --dir "$DROVERD_DIR" --listen "tcp://$ctl:$DROVER_LINK_PORT" \
		--api "$ctl:$DROVER_API_PORT" --enroll-token "$@" >>"$E2E_RUN/logs/droverd-init.log" 2>&1 || {
		echo "e2e: droverd init failed: $(tail -n 5 "$E2E_RUN/logs/droverd-init.log")" >&2
		return 1
	}
	drover_conf_set "$DROVERD_DIR/droverd.yaml" poll_timeout 2s &&
		drover_conf_set "$DROVERD_DIR/droverd.yaml" liveness_timeout 5s &&
		drover_conf_set "$DROVERD_DIR/droverd.yaml" pending_retry 300ms &&
		drover_conf_set "$DROVERD_DIR/droverd.yaml" insecure_registry true &&
		# The reference plans' analysis.http reads the gateway on the control host.
		drover_conf_set "$DROVERD_DIR/droverd.yaml" allow "http://$ctl:8000/" || return 1
	# Plans name traffic switches; only droverd.yaml says what they are.
	if [[ -n ${E2E_HAPROXY_SOCK:-} ]]; then
		printf 'balancers:\n  edge: { kind: haproxy, socket: %s }\n' "$E2E_HAPROXY_SOCK" \
			>>"$DROVERD_DIR/droverd.yaml" || return 1
	fi
	# E2E_DROVERD_EXTRA: a function printing more of droverd.yaml (prom_droverd_conf).
	if [[ -n ${E2E_DROVERD_EXTRA:-} ]]; then
		"$E2E_DROVERD_EXTRA" >>"$DROVERD_DIR/droverd.yaml" || return 1
	fi
	e2e_state_add droverd_dir "$DROVERD_DIR"
	e2e_state_add droverd_api "$DROVER_ADDR"
	e2e_state_add droverd_link "tcp://$ctl:$DROVER_LINK_PORT"
}

_drover_healthy() { in_ns control curl -fsS -o /dev/null --max-time 2 "$DROVER_ADDR/healthz"; }

drover_control_start() {
	local bin
	bin=$(e2e_bin droverd) || return 1
	proc_start droverd control "$bin" --config "$DROVERD_DIR/droverd.yaml" || return 1
	wait_for "droverd /healthz" 30 _drover_healthy || return 1
}

_drover_labels() {
	case $1 in
	core-* | supporting-* | ui-*) echo "--label tier=${1%-*}" ;;
	db-*) echo "--label role=db" ;;
	seta-* | setb-*) echo "--label color=${1:3:1}" ;; # blue-green host sets
	esac
}

drover_agent_init() {
	local host=$1 bin ctl dir labels
	shift
	bin=$(e2e_bin drover-agent) || return 1
	ctl=$(addr_of control) || return 1
	ns_of "$host" >/dev/null || return 1
	dir=$E2E_RUN/agents/$host
	svcuser_ensure || return 1 # services run as drover-svc (the package makes it)
	read -ra labels <<<"$(_drover_labels "$host")"
	in_ns "$host" "$bin" init --dir "$dir" --coordinator "tcp://$ctl:$DROVER_LINK_PORT" \
		--coordinator-key "$DROVERD_DIR/coordinator.pub" --id "$host" \
		--enroll-token-file "$DROVERD_DIR/enroll.token" "${labels[@]}" "$@" \
		>>"$E2E_RUN/logs/agent-$host-init.log" 2>&1 || {
		echo "e2e: drover-agent init $host failed: $(tail -n 5 "$E2E_RUN/logs/agent-$host-init.log")" >&2
		return 1
	}
	drover_conf_set "$dir/agent.yaml" reconnect_min 100ms &&
		drover_conf_set "$dir/agent.yaml" reconnect_max 1s &&
		drover_conf_set "$dir/agent.yaml" request_timeout 3s &&
		drover_conf_set "$dir/agent.yaml" insecure_registry true # the registry speaks http
}

drover_agent_start() {
	local bin mounts=$E2E_RUN/fs/$1/mounts
	bin=$(e2e_bin drover-agent) || return 1
	if [[ ! -f $mounts ]]; then
		proc_start "agent-$1" "$1" "$bin" --config "$E2E_RUN/agents/$1/agent.yaml"
		return
	fi
	# A host with files of its own (dbhost_prepare): the agent, and the hooks
	# it runs, see them in a mount namespace of their own. unshare and sh
	# exec, so the recorded PID is the agent's.
	# shellcheck disable=SC2016 # expanded by that sh
	proc_start "agent-$1" "$1" unshare --mount --propagation slave -- sh -c '
		while read -r src dst; do mount --bind "$src" "$dst" || exit 1; done <"$0"
		exec "$@"' "$mounts" "$bin" --config "$E2E_RUN/agents/$1/agent.yaml"
}

drover_cli() {
	local bin
	bin=$(e2e_bin drover) || return 1
	in_ns control env DROVER_ADDR="$DROVER_ADDR" DROVER_TOKEN_FILE="$DROVER_TOKEN_FILE" "$bin" "$@"
}

drover_agent_state() {
	drover_cli agents --json | jq -r --arg id "$1" '.[] | select(.id == $id) | .state'
}

_drover_all_in() {
	local want=$1 id
	shift
	for id in "$@"; do
		[[ $(drover_agent_state "$id") == "$want" ]] || {
			echo "$id is '$(drover_agent_state "$id")'"
			return 1
		}
	done
}

drover_wait_agents() {
	local want=$1 timeout=$2
	shift 2
	wait_for "agents $* $want" "$timeout" _drover_all_in "$want" "$@"
}

drover_agents_up() {
	local h
	for h in "$@"; do
		drover_agent_init "$h" && drover_agent_start "$h" || return 1
	done
	drover_wait_agents connected 30 "$@"
}
