# shellcheck shell=bash
# machine.sh: booted Debian machines (systemd as PID 1) for tests, with
# systemd-nspawn, each in one host namespace of the e2e network (net.sh).
# Source tests/e2e/lib/e2e.sh first, then this file.
#
#   machine_require            skip (77) unless root, mmdebstrap, systemd-nspawn
#   SD_DROVER_PKGS             the packages the drover tests' machines get
#   rootfs_ensure PKG...       the cached root file system with systemd, dbus and
#                              PKG... installed; sets SD_ROOTFS. Built once with
#                              mmdebstrap (about a minute) and kept under
#                              $DROVER_TEST_CACHE/nspawn/rootfs-<key>, the key
#                              being a hash of the suite and the package list;
#                              concurrent runs wait on a lock. The Debian mirror
#                              is the host's own: the apt sources of this machine
#                              that point at a Debian archive.
#   machine_up NAME [ARG...]   boot NAME (a host of net_up: its namespace, address
#                              and eth0 become the machine's) on an overlay of
#                              SD_ROOTFS; ARG... go to systemd-nspawn (e.g.
#                              --bind-ro=SRC:DST). Returns at once; the machine is
#                              torn down by the harness's exit trap.
#   machine_wait NAME [SECS]   until `systemctl is-system-running` says running
#                              (or degraded, whose failed units are printed)
#   msh NAME CMD...            run CMD inside NAME (all its namespaces, a clean
#                              environment); exit status is CMD's
#   machine_cp SRC NAME DST    copy a host file into NAME
#   machine_reboot NAME [SECS] `systemctl reboot` inside, then machine_wait
#   machine_pid NAME           the host PID of NAME's systemd
#   machine_down_all           kill every machine (registered as an at-exit step)
#   sd_packages DIR            this build's two .debs into DIR: copied from
#                              $SD_PACKAGES (CTest's fixture systemd_packages
#                              built them for this run), else made with cpack
#
# Teardown: the machine's systemd is killed (SIGKILL from outside ends the
# whole PID namespace), then its runner exits; the mounts (overlay root,
# nspawn's tmpfs) live in the runner's private mount namespace and go with
# it; net_down removes the namespaces, veths and the blackhole route.

SD_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SD_CACHE=${DROVER_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drover-test}/nspawn
SD_MACHINES=()
# What the machines of the drover tests get: the libraries the two packages
# depend on (so `apt-get install ./FILE.deb` needs no mirror: the machines
# have none), and the tools the tests run inside. One list for every test,
# so they share one cached root file system; packaging.sh checks that the
# packages' Depends are all in it.
# shellcheck disable=SC2034 # used by the tests that source this file
SD_DROVER_PKGS=(adduser openssl libc6 libarchive13 libcurl4 libjansson4 libmicrohttpd12 libnng1
	libprotobuf-c1 libpq5 libsodium23 libsqlite3-0 libssl3 libsystemd0 libyaml-0-2
	ca-certificates curl jq iproute2 procps)

machine_require() {
	e2e_require_root
	e2e_require_tools mmdebstrap systemd-nspawn nsenter unshare flock sha256sum
}

# The host's apt sources that name a Debian archive (.../debian or
# .../debian-security), as files mmdebstrap pastes into the new root.
_sd_sources() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] || continue
		grep -Eq '^[^#]*[a-z+]+://[^[:space:]]*/debian(-security)?/?([[:space:]]|$)' "$f" && echo "$f"
	done
	return 0
}

rootfs_ensure() {
	local suite pkgs key dir tmp srcs=() t0 rc=0
	# shellcheck source=/dev/null
	suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[[ -n $suite ]] || {
		echo "machine: no VERSION_CODENAME in /etc/os-release" >&2
		return 1
	}
	pkgs=$(printf '%s\n' systemd systemd-sysv dbus "$@" | sort -u | tr '\n' ',')
	pkgs=${pkgs%,}
	key=$(printf '%s %s\n' "$suite" "$pkgs" | sha256sum | cut -c1-16)
	dir=$SD_CACHE/rootfs-$key
	SD_ROOTFS=$dir
	[[ -f $dir/.complete ]] && return 0
	mapfile -t srcs < <(_sd_sources)
	((${#srcs[@]})) || {
		echo "machine: no apt source of this host names a Debian archive" >&2
		return 1
	}
	mkdir -p "$SD_CACHE"
	(
		flock -w 600 9 || {
			echo "machine: timed out waiting for $dir.lock" >&2
			exit 1
		}
		[[ -f $dir/.complete ]] && exit 0
		tmp=$dir.tmp-$$
		rm -rf "$tmp" "$dir"
		t0=$(e2e_now_ms)
		e2e_log "building the machine root file system ($suite + $pkgs) in $dir"
		# Services a test machine does not need, masked so boots are quick
		# and the logs quiet. ("$1" in the hooks is the new root, for mmdebstrap.)
		# shellcheck disable=SC2016
		nice mmdebstrap --quiet --variant=apt --include="$pkgs" \
			--customize-hook='chroot "$1" systemctl mask console-getty.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer >/dev/null 2>&1 || true' \
			--customize-hook='rm -f "$1/etc/hostname"' \
			"$suite" "$tmp" "${srcs[@]}" >"$SD_CACHE/mmdebstrap-$key.log" 2>&1 || {
			echo "machine: mmdebstrap failed:" >&2
			tail -n 30 "$SD_CACHE/mmdebstrap-$key.log" >&2
			rm -rf "$tmp"
			exit 1
		}
		touch "$tmp/.complete"
		mv "$tmp" "$dir"
		e2e_log "root file system built in $((($(e2e_now_ms) - t0) / 1000)) s"
	) 9>"$dir.lock" || rc=$?
	return "$rc"
}

_sd_dir() { echo "$E2E_RUN/machines/$1"; }

machine_up() {
	local name=$1 ns dir pid
	shift
	[[ -n ${SD_ROOTFS:-} && -f $SD_ROOTFS/.complete ]] || {
		echo "machine: rootfs_ensure first" >&2
		return 1
	}
	ns=$(ns_of "$name") || return 1
	dir=$(_sd_dir "$name")
	mkdir -p "$dir"
	((${#SD_MACHINES[@]})) || e2e_at_exit machine_down_all
	SD_MACHINES+=("$name")
	unshare --mount bash "$SD_LIB/machine-run.sh" "$dir" "$SD_ROOTFS" "$ns" "$name" "$@" \
		>>"$E2E_RUN/logs/machine-$name.log" 2>&1 </dev/null &
	pid=$!
	_proc_record "machine-$name" "$pid" "$(_e2e_starttime "$pid" || echo 0)" "$name"
}

# The host PID of NAME's systemd: the child of its current systemd-nspawn.
machine_pid() {
	local npid pid
	npid=$(cat "$(_sd_dir "$1")/nspawn.pid" 2>/dev/null) || return 1
	pid=$(ps -o pid= --ppid "$npid" 2>/dev/null | head -n 1)
	pid=${pid// /}
	[[ -n $pid ]] || return 1
	echo "$pid"
}

msh() {
	local pid
	pid=$(machine_pid "$1") || {
		echo "machine: $1 is not running" >&2
		return 125
	}
	shift
	nsenter --target "$pid" --mount --uts --ipc --net --pid -- \
		env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= "$@"
}

machine_cp() {
	local pid
	pid=$(machine_pid "$2") || return 1
	cp "$1" "/proc/$pid/root$3"
}

_sd_running() {
	local st
	st=$(msh "$1" systemctl is-system-running 2>/dev/null) || true
	case $st in
	running) return 0 ;;
	degraded)
		echo "machine: $1 is degraded: $(msh "$1" systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')" >&2
		return 0
		;;
	esac
	echo "$1: ${st:-not up}"
	return 1
}

machine_wait() {
	wait_for "machine $1 booted" "${2:-60}" _sd_running "$1"
}

machine_reboot() {
	local old
	old=$(machine_pid "$1") || return 1
	msh "$1" systemctl reboot || return 1
	# shellcheck disable=SC2317 # called by wait_for
	_sd_rebooted() { local p; p=$(machine_pid "$1") && [[ $p != "$2" ]]; }
	wait_for "machine $1 restarting" "${2:-60}" _sd_rebooted "$1" "$old" || return 1
	machine_wait "$1" "${2:-60}"
}

machine_down_all() {
	local name pid i
	for name in "${SD_MACHINES[@]}"; do
		pid=$(machine_pid "$name" 2>/dev/null) || continue
		# the runner restarts only on exit status 133 (reboot); a killed
		# machine's nspawn exits otherwise
		kill -KILL "$pid" 2>/dev/null
	done
	for name in "${SD_MACHINES[@]}"; do
		pid=$(proc_pid "machine-$name" 2>/dev/null) || continue
		for ((i = 0; i < 100; i++)); do
			proc_alive "machine-$name" || break
			sleep 0.1
		done
	done
	SD_MACHINES=()
}

sd_packages() {
	local out=$1
	mkdir -p "$out"
	if [[ -n ${SD_PACKAGES:-} ]] && compgen -G "$SD_PACKAGES/drover-agent_*.deb" >/dev/null &&
		compgen -G "$SD_PACKAGES/drover-coordinator_*.deb" >/dev/null; then
		cp "$SD_PACKAGES"/drover-agent_*.deb "$SD_PACKAGES"/drover-coordinator_*.deb "$out/"
		return
	fi
	cpack --config "$E2E_BUILD_DIR/CPackConfig.cmake" -G DEB -B "$out" >"$E2E_RUN/logs/cpack.log" 2>&1 || {
		echo "machine: cpack failed: $(tail -n 20 "$E2E_RUN/logs/cpack.log")" >&2
		return 1
	}
	rm -rf "$out/_CPack_Packages"
}
