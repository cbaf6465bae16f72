# shellcheck shell=bash
# net.sh: the multi-host network of one e2e run, and link faults.
#
#   net_up N | net_up NAME...
#       Hosts h1..hN (or the NAMEs given) plus "control", each a network
#       namespace <prefix>-<name>, joined by a bridge that lives in a namespace
#       of its own (<prefix>-br): nothing of the test network exists in the
#       root namespace but the blackhole route. Prefix: drv<PID>. Subnet: one
#       free 10.213.K.0/24; control is .1, the i-th host .(10+i).
#       First of all, "ip route add blackhole <subnet>" in the root namespace:
#       the root namespace routes 10.213/16 to the outside otherwise. Installs
#       the EXIT/INT/TERM trap that runs net_down. Exports E2E_PREFIX,
#       E2E_SUBNET, E2E_NET (10.213.K), E2E_RUN, E2E_SOCK, E2E_STATE.
#   net_add_host NAME  one more host on the network that is up, addressed as
#                      net_up would have (e.g. a booted machine joining the demo)
#   net_down           stop every recorded process, delete namespaces, bridge,
#                      veths and the route, remove the state file (idempotent)
#   in_ns HOST CMD...  run CMD inside HOST's namespace (HOST: a host or control)
#   in_ns_fn HOST FN ARGS...   run a function of this library (or of
#                      tests/lib/*.sh) inside HOST's namespace, in a child bash
#   ns_of HOST         the namespace name      addr_of HOST   the IPv4 address
#   net_hosts          host names (not control), one per line, in order
#   link_cut HOST / link_heal HOST   set the bridge side of HOST's veth down/up
#                      (HOST keeps its address; its carrier goes away)
#   link_is_cut HOST   true while cut
#   drop_on HOST [PEER] [PROB]   iptables DROP inside HOST's namespace: all
#                      traffic on eth0, or only to/from PEER's address; PROB
#                      (0..1) drops that share of packets at random (loss)
#   undrop HOST        remove every DROP rule drop_on added on HOST
#   net_root_guarded   true when the root namespace cannot send to the subnet:
#                      the blackhole route is there and "ip route get" of every
#                      node address finds no way out (the kernel answers EINVAL
#                      for a blackhole; it would name eth0 without it)
#
# Every client runs inside a namespace: use in_ns for curl, drover, etc.
# Never send anything to $E2E_NET.* from the root namespace.

# E2E_HOSTS: the host names of the run (net_up sets it; for scripts).
# shellcheck disable=SC2034
E2E_HOSTS=()
E2E_NET_MAX_HOSTS=200

# Node record "NAME ADDR NETNS BRIDGE_PORT" of HOST (control included).
_net_node() {
	local line
	[[ -n ${E2E_STATE:-} && -f $E2E_STATE ]] || {
		echo "e2e: no network is up (net_up first)" >&2
		return 1
	}
	while IFS= read -r line; do
		if [[ $line == "host=$1 "* ]]; then
			echo "${line#host=}"
			return 0
		fi
	done <"$E2E_STATE"
	echo "e2e: unknown host '$1' (hosts: control $(net_hosts | tr '\n' ' '))" >&2
	return 1
}

_net_field() {
	local rec f
	rec=$(_net_node "$1") || return 1
	read -ra f <<<"$rec"
	echo "${f[$2]}"
}

ns_of() { _net_field "$1" 2; }
addr_of() { _net_field "$1" 1; }
_net_port_of() { _net_field "$1" 3; }

net_hosts() {
	local h
	while IFS= read -r h; do
		h=${h%% *}
		[[ $h == control ]] || echo "$h"
	done < <(e2e_state_all host)
}

in_ns() {
	local ns
	ns=$(ns_of "$1") || return 2
	shift
	ip netns exec "$ns" "$@"
}

in_ns_fn() {
	local ns
	ns=$(ns_of "$1") || return 2
	shift
	# shellcheck disable=SC2016 # expanded by the child bash
	ip netns exec "$ns" bash -c 'source "$0" || exit 2; "$@"' "$E2E_LIB/e2e.sh" "$@"
}

# Pick prefix and subnet, and claim the subnet with the blackhole route.
# "ip route add" fails when the route exists: that is the claim's atomicity.
_net_claim() {
	local base=drv$$ prefix sfx="" k i start
	prefix=$base
	for sfx in "" a b c d e f g h; do
		prefix=$base$sfx
		if [[ ! -e $E2E_RUN_ROOT/$prefix.state ]] &&
			! ip netns list | awk '{print $1}' | grep -q "^$prefix-"; then
			break
		fi
		prefix=""
	done
	[[ -n $prefix ]] || {
		echo "e2e: leftovers of runs named $base*: run tests/e2e/cleanup.sh --all-mine" >&2
		return 1
	}
	start=$(($$ % 250 + 1))
	for ((i = 0; i < 250; i++)); do
		k=$(((start + i - 1) % 250 + 1))
		[[ -z $(ip -4 route show table all root "10.213.$k.0/24" 2>/dev/null) ]] || continue
		[[ -z $(ip -4 -o addr show to "10.213.$k.0/24" 2>/dev/null) ]] || continue
		ip route add blackhole "10.213.$k.0/24" 2>/dev/null || continue
		E2E_PREFIX=$prefix
		E2E_NET=10.213.$k
		E2E_SUBNET=$E2E_NET.0/24
		return 0
	done
	echo "e2e: no free /24 left in 10.213.0.0/16 (leftovers? tests/e2e/cleanup.sh --all-mine)" >&2
	return 1
}

_net_write_state_head() {
	mkdir -p "$E2E_RUN_ROOT" || return 1
	E2E_STATE=$E2E_RUN_ROOT/$E2E_PREFIX.state
	E2E_RUN=$E2E_RUN_ROOT/$E2E_PREFIX
	E2E_SOCK=${TMPDIR:-/tmp}/$E2E_PREFIX.sock
	{
		echo "prefix=$E2E_PREFIX"
		echo "subnet=$E2E_SUBNET"
		echo "route=$E2E_SUBNET"
		echo "owner_pid=$$"
		echo "owner_start=$(_e2e_starttime $$)"
		echo "run_dir=$E2E_RUN"
		echo "sock_dir=$E2E_SOCK"
		echo "created=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >"$E2E_STATE" || return 1
	rm -rf "$E2E_RUN" "$E2E_SOCK"
	mkdir -p "$E2E_RUN/logs" "$E2E_RUN/procs" && mkdir -m 0700 "$E2E_SOCK"
}

_net_add_ns() {
	local ns=$E2E_PREFIX-$1
	ip netns add "$ns" || return 1
	e2e_state_add netns "$ns"
	ip -n "$ns" link set lo up || return 1
	# IPv6 off: no router solicitations or DAD noise on the test bridge.
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1 || true
}

# _net_add_node NAME ADDR PORT: namespace, veth (eth0 there, PORT on the bridge).
_net_add_node() {
	local name=$1 addr=$2 port=$3 ns=$E2E_PREFIX-$1 br=$E2E_PREFIX-br
	_net_add_ns "$name" || return 1
	# Both ends are created directly in their namespaces: the root namespace
	# never holds an interface of the test network, even for a moment.
	ip link add "$port" netns "$br" type veth peer name eth0 netns "$ns" || return 1
	ip -n "$br" link set "$port" master br0 up || return 1
	ip -n "$ns" addr add "$addr/24" dev eth0 || return 1
	ip -n "$ns" link set eth0 up || return 1
	e2e_state_add host "$name $addr $ns $port"
}

_net_valid_name() {
	[[ $1 =~ ^[a-z][a-z0-9-]{0,31}$ && $1 != control && $1 != br ]]
}

net_up() {
	local names=() n i
	[[ -z ${E2E_STATE:-} || ! -f $E2E_STATE ]] || {
		echo "e2e: net_up: a network is already up ($E2E_PREFIX)" >&2
		return 1
	}
	if [[ $# == 1 && $1 =~ ^[0-9]+$ ]]; then
		for ((i = 1; i <= $1; i++)); do names+=("h$i"); done
	else
		names=("$@")
	fi
	((${#names[@]} >= 1 && ${#names[@]} <= E2E_NET_MAX_HOSTS)) || {
		echo "e2e: net_up: 1..$E2E_NET_MAX_HOSTS hosts, got ${#names[@]}" >&2
		return 2
	}
	for n in "${names[@]}"; do
		_net_valid_name "$n" || {
			echo "e2e: net_up: bad host name '$n' ([a-z][a-z0-9-]*, not control/br)" >&2
			return 2
		}
	done
	[[ $(printf '%s\n' "${names[@]}" | sort | uniq -d) == "" ]] || {
		echo "e2e: net_up: duplicate host names" >&2
		return 2
	}
	_net_claim || return 1
	if ! _net_write_state_head; then
		ip route del blackhole "$E2E_SUBNET" 2>/dev/null
		return 1
	fi
	export E2E_PREFIX E2E_NET E2E_SUBNET E2E_STATE E2E_RUN E2E_SOCK
	trap '_e2e_on_exit' EXIT
	budget_traps
	_net_build "${names[@]}" || {
		echo "e2e: net_up: building the network failed; tearing down" >&2
		net_down
		return 1
	}
	E2E_HOSTS=("${names[@]}")
	e2e_log "network $E2E_PREFIX up: $E2E_SUBNET, control $E2E_NET.1, ${#names[@]} hosts"
}

net_add_host() {
	local i=$((${#E2E_HOSTS[@]} + 1))
	_net_valid_name "$1" && ! _net_node "$1" >/dev/null 2>&1 || {
		echo "e2e: net_add_host: bad or taken host name '$1'" >&2
		return 2
	}
	((i <= E2E_NET_MAX_HOSTS)) || {
		echo "e2e: net_add_host: already $E2E_NET_MAX_HOSTS hosts" >&2
		return 2
	}
	_net_add_node "$1" "$E2E_NET.$((10 + i))" "p$i" || return 1
	E2E_HOSTS+=("$1")
}

_net_build() {
	local br=$E2E_PREFIX-br i=1 n
	_net_add_ns br || return 1
	ip -n "$br" link add br0 type bridge || return 1
	ip -n "$br" link set br0 up || return 1
	_net_add_node control "$E2E_NET.1" p0 || return 1
	for n in "$@"; do
		_net_add_node "$n" "$E2E_NET.$((10 + i))" "p$i" || return 1
		i=$((i + 1))
	done
}

net_down() {
	local state=${E2E_STATE:-}
	[[ -n $state && -f $state ]] || return 0
	_e2e_teardown_state "$state"
	# shellcheck disable=SC2034
	E2E_HOSTS=()
	unset E2E_STATE
}

# _e2e_teardown_state FILE: undo everything FILE records. Used by net_down
# and by cleanup.sh; reads nothing but FILE.
_e2e_teardown_state() {
	local state=$1 rec ns subnet run sock f pid
	set +e
	# 1. processes we started (PID + start time must match)
	while IFS= read -r rec; do
		read -ra f <<<"$rec"
		_proc_kill_rec "${f[1]}" "${f[2]}"
	done < <(e2e_state_all proc "$state" | tac)
	# 2. anything still inside our namespaces (their own children, forks)
	while IFS= read -r ns; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
	done < <(e2e_state_all netns "$state")
	# 3. file systems mounted for the run (e2e_mount_tmpfs), newest first
	while IFS= read -r f; do
		[[ $f == */.run/drv*/* ]] && mountpoint -q "$f" && umount -l "$f"
	done < <(e2e_state_all mount "$state" | tac)
	# 4. namespaces (veths and the bridge go with them)
	while IFS= read -r ns; do
		[[ -n $ns ]] && ip netns del "$ns" 2>/dev/null
	done < <(e2e_state_all netns "$state" | tac)
	# 5. the blackhole route, last: nothing can leak once namespaces are gone
	subnet=$(e2e_state_get route "$state")
	if [[ $subnet =~ ^10\.213\.[0-9]+\.0/24$ ]]; then
		ip route del blackhole "$subnet" 2>/dev/null
	fi
	sock=$(e2e_state_get sock_dir "$state")
	[[ $sock == */drv*.sock ]] && rm -rf "$sock"
	run=$(e2e_state_get run_dir "$state")
	if [[ -n $run && $run == */.run/drv* && ${E2E_KEEP:-0} != 1 ]]; then
		rm -rf "$run"
	fi
	rm -f "$state"
}

# _e2e_on_exit: the EXIT trap net_up installs.
_e2e_on_exit() {
	local rc=$? i
	budget_end
	set +e
	for ((i = ${#E2E_AT_EXIT[@]} - 1; i >= 0; i--)); do
		eval "${E2E_AT_EXIT[$i]}"
	done
	if ((rc != 0 && rc != 77)) && [[ -n ${E2E_RUN:-} && -d $E2E_RUN/logs ]]; then
		_e2e_dump_logs
	fi
	net_down
	if ((rc != 0 && rc != 77)); then
		echo "e2e: FAILED (exit $rc) after $E2E_PASSED checks" >&2
	fi
	exit "$rc"
}

_e2e_dump_logs() {
	local f
	for f in "$E2E_RUN"/logs/*.log; do
		[[ -s $f ]] || continue
		echo "e2e: ---- last lines of ${f##*/} ----" >&2
		tail -n 15 "$f" >&2
	done
}

net_root_guarded() {
	local rec f out
	[[ $(ip -4 route show table main exact "$E2E_SUBNET") == "blackhole $E2E_SUBNET"* ]] || {
		echo "e2e: no blackhole route for $E2E_SUBNET in the root namespace" >&2
		return 1
	}
	while IFS= read -r rec; do
		read -ra f <<<"$rec"
		if out=$(ip -4 route get "${f[1]}" 2>&1) && [[ $out != blackhole* ]]; then
			echo "e2e: the root namespace routes ${f[1]} out: $out" >&2
			return 1
		fi
	done < <(e2e_state_all host)
}

# link_cut HOST: the "cable" of HOST is pulled at the switch.
link_cut() {
	local port
	port=$(_net_port_of "$1") || return 2
	ip -n "$E2E_PREFIX-br" link set "$port" down
}

link_heal() {
	local port
	port=$(_net_port_of "$1") || return 2
	ip -n "$E2E_PREFIX-br" link set "$port" up
}

link_is_cut() {
	local port
	port=$(_net_port_of "$1") || return 2
	[[ $(ip -n "$E2E_PREFIX-br" -o link show "$port") != *",UP"* &&
		$(ip -n "$E2E_PREFIX-br" -o link show "$port") != *"<UP"* ]]
}

_net_fault_chain() {
	in_ns "$1" iptables -w 5 -N DRV_FAULT 2>/dev/null
	in_ns "$1" iptables -w 5 -C INPUT -j DRV_FAULT 2>/dev/null ||
		in_ns "$1" iptables -w 5 -I INPUT -j DRV_FAULT || return 1
	in_ns "$1" iptables -w 5 -C OUTPUT -j DRV_FAULT 2>/dev/null ||
		in_ns "$1" iptables -w 5 -I OUTPUT -j DRV_FAULT
}

drop_on() {
	local host=$1 peer=${2:-} prob=${3:-} paddr="" m=()
	ns_of "$host" >/dev/null || return 2
	if [[ -n $peer ]]; then paddr=$(addr_of "$peer") || return 2; fi
	if [[ -n $prob ]]; then
		[[ $prob =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] || {
			echo "e2e: drop_on: PROB must be in 0..1, got '$prob'" >&2
			return 2
		}
		m=(-m statistic --mode random --probability "$prob")
	fi
	_net_fault_chain "$host" || return 1
	if [[ -n $paddr ]]; then
		in_ns "$host" iptables -w 5 -A DRV_FAULT -i eth0 -s "$paddr" "${m[@]}" -j DROP &&
			in_ns "$host" iptables -w 5 -A DRV_FAULT -o eth0 -d "$paddr" "${m[@]}" -j DROP
	else
		in_ns "$host" iptables -w 5 -A DRV_FAULT -i eth0 "${m[@]}" -j DROP &&
			in_ns "$host" iptables -w 5 -A DRV_FAULT -o eth0 "${m[@]}" -j DROP
	fi
}

undrop() {
	ns_of "$1" >/dev/null || return 2
	in_ns "$1" iptables -w 5 -F DRV_FAULT 2>/dev/null || true
}
