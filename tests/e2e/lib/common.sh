# shellcheck shell=bash
# common.sh: logging, skip/fail, paths and the run's state file for the e2e
# harness (sourced by e2e.sh; not meant to be sourced alone).
#
# State file: tests/e2e/.run/<prefix>.state, one "key=value" per line, only
# ever appended to while the run lives. Keys (a key may repeat):
#   prefix=drv12345            names of everything this run made start with it
#   subnet=10.213.57.0/24      the run's subnet; route=... is its blackhole
#   owner_pid=12345 owner_start=<ticks>   the harness shell (PID + start time)
#   run_dir=/abs/path          logs, registry storage, configs of this run
#   sock_dir=/tmp/drv12345.s   unix sockets (short path: sun_path is 108 bytes)
#   route=10.213.57.0/24       blackhole route added in the root namespace
#   netns=drv12345-h1          every namespace created (also -br, -ctl)
#   host=NAME ADDR NETNS PORT  a node: name, address, namespace, bridge port
#   proc=NAME PID START NODE   a process started by proc_start
#   registry=10.213.57.1:5000  haproxy_socket=PATH  haproxy_frontend=BE ADDR:PORT
#   mount=/abs/path            a file system mounted for the run (unmounted first)
# cleanup.sh reads nothing but this file to undo a run.

E2E_LIB=${E2E_LIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
E2E_DIR=${E2E_DIR:-$(cd "$E2E_LIB/.." && pwd)}
E2E_ROOT=${E2E_ROOT:-$(cd "$E2E_DIR/../.." && pwd)}
E2E_RUN_ROOT=${E2E_RUN_ROOT:-$E2E_DIR/.run}
E2E_BUILD_DIR=${E2E_BUILD_DIR:-$E2E_ROOT/build}
export E2E_LIB E2E_DIR E2E_ROOT E2E_RUN_ROOT E2E_BUILD_DIR

E2E_PASSED=${E2E_PASSED:-0}

e2e_log() { echo "e2e: $*" >&2; }

# fail MSG: stop the test (exit 1); the EXIT trap tears everything down.
fail() {
	echo "e2e: FAIL: $*" >&2
	exit 1
}

# ok MSG: count and print one passed check ("ok N - MSG", TAP-like).
ok() {
	E2E_PASSED=$((E2E_PASSED + 1))
	echo "ok $E2E_PASSED - $*"
	budget_passed "ok $E2E_PASSED - $*"
}

# skip MSG: exit 77 (CTest SKIP_RETURN_CODE) with a loud reason.
skip() {
	{
		echo "=================================================================="
		echo "e2e: SKIPPED: $*"
		echo "=================================================================="
	} >&2
	exit 77
}

# e2e_require_root: skip unless root and "ip netns" works here.
e2e_require_root() {
	local probe
	((EUID == 0)) || skip "needs root (network namespaces, routes, iptables); run as root"
	command -v ip >/dev/null || skip "ip (iproute2) is not installed"
	probe=drvprobe$$
	if ! ip netns add "$probe" 2>/dev/null; then
		skip "'ip netns add' does not work here (no CAP_SYS_ADMIN or no netns support)"
	fi
	if ! ip netns exec "$probe" true 2>/dev/null; then
		ip netns del "$probe" 2>/dev/null
		skip "'ip netns exec' does not work here"
	fi
	ip netns del "$probe" || skip "'ip netns del' does not work here"
}

# e2e_require_tools TOOL...: skip when one is missing.
e2e_require_tools() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || skip "$t is not installed (make deps)"
	done
}

# e2e_bin NAME: path of a built binary (droverd, drover-agent, drover,
# berry-svc, drv-haproxy-cmd) under $E2E_BUILD_DIR; fails when not built.
e2e_bin() {
	local p
	case $1 in
	droverd) p=$E2E_BUILD_DIR/coordinator/droverd ;;
	drover) p=$E2E_BUILD_DIR/coordinator/ctl/drover ;;
	drover-agent) p=$E2E_BUILD_DIR/agent/drover-agent ;;
	berry-svc | drv-haproxy-cmd) p=$E2E_BUILD_DIR/tests/fixtures/$1 ;;
	*)
		echo "e2e_bin: unknown binary '$1'" >&2
		return 2
		;;
	esac
	[[ -x $p ]] || {
		echo "e2e_bin: $p is not built (cmake --build $E2E_BUILD_DIR)" >&2
		return 1
	}
	echo "$p"
}

# Start time of PID in clock ticks since boot (field 22 of /proc/PID/stat);
# PID plus start time names one process, even after the PID is reused.
_e2e_starttime() {
	local stat f
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	read -ra f <<<"$stat"
	echo "${f[19]}"
}

# _e2e_same_proc PID START: true when PID is alive, not a zombie, and started at START.
_e2e_same_proc() {
	local pid=$1 start=$2 stat f
	[[ $pid =~ ^[0-9]+$ && $start =~ ^[0-9]+$ ]] || return 1
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	read -ra f <<<"$stat"
	[[ ${f[0]} != Z && ${f[19]} == "$start" ]]
}

# e2e_state_add KEY VALUE: append one line to the run's state file.
e2e_state_add() {
	[[ -n ${E2E_STATE:-} ]] || {
		echo "e2e: no run (net_up first)" >&2
		return 1
	}
	printf '%s=%s\n' "$1" "$2" >>"$E2E_STATE"
}

# e2e_state_get KEY [FILE]: the last value of KEY (empty when absent).
e2e_state_get() {
	local file=${2:-${E2E_STATE:-}} line v=
	[[ -f $file ]] || return 0
	while IFS= read -r line; do
		[[ $line == "$1="* ]] && v=${line#*=}
	done <"$file"
	echo "$v"
}

# e2e_state_all KEY [FILE]: every value of KEY, one per line, in order.
e2e_state_all() {
	local file=${2:-${E2E_STATE:-}} line
	[[ -f $file ]] || return 0
	while IFS= read -r line; do
		if [[ $line == "$1="* ]]; then echo "${line#*=}"; fi
	done <"$file"
}

# e2e_now_ms: milliseconds (wall clock; for measuring and deadlines).
e2e_now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

# wait_for DESC TIMEOUT_S CMD...: run CMD every 100-250 ms until it succeeds
# or TIMEOUT_S seconds (may be fractional) pass. Returns 0 when it succeeded,
# 1 after printing "timed out ... DESC" and CMD's last output to stderr.
wait_for() {
	local desc=$1 timeout=$2 out start now limit tries=0
	shift 2
	[[ $timeout =~ ^[0-9]+(\.[0-9]+)?$ ]] || {
		echo "wait_for: bad timeout '$timeout'" >&2
		return 2
	}
	start=$(e2e_now_ms)
	limit=$(awk -v t="$timeout" 'BEGIN { printf "%d", t * 1000 }')
	while :; do
		tries=$((tries + 1))
		if out=$("$@" 2>&1); then
			return 0
		fi
		now=$(e2e_now_ms)
		if ((now - start >= limit)); then
			echo "e2e: timed out after ${timeout}s ($tries tries) waiting for: $desc" >&2
			[[ -n $out ]] && printf 'e2e:   last output: %s\n' "${out:0:2000}" >&2
			return 1
		fi
		if ((now - start < 2000)); then sleep 0.1; else sleep 0.25; fi
	done
}

# e2e_at_exit CMD...: run CMD when the harness tears down (before the network
# goes), most recently registered first. Use this, not your own EXIT trap.
E2E_AT_EXIT=()
e2e_at_exit() {
	local q
	printf -v q '%q ' "$@"
	E2E_AT_EXIT+=("$q")
}

# e2e_mount_tmpfs DIR SIZE: mount a tmpfs of SIZE (e.g. 256k) on DIR, a
# directory inside the run directory; DIR's current files are copied into
# it. Recorded, so teardown (and cleanup.sh) unmounts it. Mounted in the root
# mount namespace: processes started in a host namespace see it (ip netns
# exec makes their mount namespace a slave of the root one).
e2e_mount_tmpfs() {
	local dir=$1 size=$2 tmp
	[[ $dir == "$E2E_RUN"/* && -d $dir ]] || {
		echo "e2e: e2e_mount_tmpfs: $dir is not a directory inside $E2E_RUN" >&2
		return 2
	}
	tmp=$(mktemp -d "$E2E_RUN/.tmpfs-copy.XXXXXX") || return 1
	cp -a "$dir/." "$tmp/" || return 1
	e2e_state_add mount "$dir"
	mount -t tmpfs -o "size=$size,mode=0700" drover-e2e "$dir" || return 1
	cp -a "$tmp/." "$dir/" || return 1
	rm -rf "$tmp"
}
