# shellcheck shell=bash
# registry.sh: a throwaway OCI registry on loopback for tests (source me).
#
#   registry_start DIR PORT [ADDR]
#                             start Debian's docker-registry on ADDR:PORT
#                             (default 127.0.0.1), storage and log under DIR,
#                             PID in DIR/registry.pid; returns once GET /v2/
#                             answers (about 10 s at most)
#   registry_stop DIR         stop the registry started with DIR (that PID only)
#   registry_write_config DIR PORT [ADDR]   only write DIR/config.yml
#
# Only 127.0.0.1 is bound unless ADDR is given; ADDR must be loopback or an
# address of a network namespace the test created, and the caller must run
# registry_start inside that namespace (the readiness probe goes to ADDR).
# Both are idempotent: starting a registry that
# is already up under DIR, or stopping one that is gone, succeeds. Errors go to
# stderr with the registry's log tail, and the function returns non-zero.

REGISTRY_BIN=${REGISTRY_BIN:-/usr/bin/docker-registry}

# True when PID $1 is alive and is a docker-registry (guards against PID reuse).
_registry_pid_is_ours() {
	local pid=$1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	local cmd
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmd == *docker-registry* ]]
}

_registry_fail() {
	local dir=$1
	shift
	echo "registry: $*" >&2
	if [[ -f $dir/registry.log ]]; then
		echo "registry: last lines of $dir/registry.log:" >&2
		tail -n 20 "$dir/registry.log" >&2
	fi
	return 1
}

# registry_write_config DIR PORT [ADDR]: DIR/config.yml for a registry on
# ADDR:PORT with storage under DIR/storage (for callers that run the process
# themselves, e.g. the e2e harness in a network namespace).
registry_write_config() {
	local dir=$1 port=$2 addr=${3:-127.0.0.1}
	mkdir -p "$dir/storage" || return 1
	cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $addr:$port
  secret: drover-test-$RANDOM$RANDOM
  headers:
    X-Content-Type-Options: [nosniff]
EOF
}

registry_start() {
	local dir=${1:?usage: registry_start DIR PORT [ADDR]} port=${2:?usage: registry_start DIR PORT [ADDR]}
	local addr=${3:-127.0.0.1} pid i

	[[ -x $REGISTRY_BIN ]] || { echo "registry: $REGISTRY_BIN missing (apt-get install docker-registry)" >&2; return 1; }
	[[ $port =~ ^[0-9]+$ ]] || { echo "registry: bad port '$port'" >&2; return 1; }
	[[ $addr =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "registry: bad address '$addr'" >&2; return 1; }
	mkdir -p "$dir/storage" || return 1
	dir=$(cd "$dir" && pwd)
	if [[ -f $dir/registry.pid ]] && _registry_pid_is_ours "$(cat "$dir/registry.pid")" &&
		curl -fsS -o /dev/null --max-time 2 "http://$addr:$port/v2/"; then
		return 0 # already running here
	fi
	# Someone else on the port would answer our readiness probe: refuse.
	if curl -s -o /dev/null --max-time 1 "http://$addr:$port/" 2>/dev/null; then
		echo "registry: $addr:$port is already in use" >&2
		return 1
	fi
	registry_write_config "$dir" "$port" "$addr" || return 1
	"$REGISTRY_BIN" serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$dir/registry.pid"
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$dir/registry.pid"
			_registry_fail "$dir" "docker-registry exited during start-up (port $port)"
			return 1
		fi
		if curl -fsS -o /dev/null --max-time 1 "http://$addr:$port/v2/" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	registry_stop "$dir"
	_registry_fail "$dir" "no answer on http://$addr:$port/v2/ after 10 s"
}

registry_stop() {
	local dir=${1:?usage: registry_stop DIR} pid i

	[[ -f $dir/registry.pid ]] || return 0
	pid=$(cat "$dir/registry.pid")
	if _registry_pid_is_ours "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "registry: PID $pid ignored SIGTERM for 5 s, sending SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null
		fi
		# Reap it if it is our child, so no zombie lingers.
		wait "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/registry.pid"
}
