#!/usr/bin/env bash
# cleanup.sh: undo what interrupted e2e runs left behind (namespaces, the
# bridge and veths with them, the blackhole route, processes, sockets).
#
#   sudo tests/e2e/cleanup.sh PREFIX        the run drvNNN (its state file)
#   sudo tests/e2e/cleanup.sh --all-mine    every run recorded under
#                                           tests/e2e/.run/ (E2E_RUN_ROOT)
#   --force   also runs whose harness process is still alive
#
# It touches only what a state file tests/e2e/.run/PREFIX.state records:
# processes by PID and start time, namespaces by name, the route by subnet.
# Nothing is guessed from names. Exit 0 when all went, 1 otherwise.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

usage() {
	echo "usage: cleanup.sh PREFIX|--all-mine [--force]" >&2
	exit 2
}

force=0
target=""
for a in "$@"; do
	case $a in
	--force) force=1 ;;
	--all-mine) target=--all-mine ;;
	drv[0-9]*) target=$a ;;
	*) usage ;;
	esac
done
[[ -n $target ]] || usage
((EUID == 0)) || {
	echo "cleanup.sh: needs root (ip netns del, ip route del)" >&2
	exit 1
}

states=()
if [[ $target == --all-mine ]]; then
	for f in "$E2E_RUN_ROOT"/drv*.state; do
		[[ -f $f ]] && states+=("$f")
	done
else
	[[ -f $E2E_RUN_ROOT/$target.state ]] || {
		echo "cleanup.sh: no state file $E2E_RUN_ROOT/$target.state" >&2
		exit 1
	}
	states=("$E2E_RUN_ROOT/$target.state")
fi
if ((${#states[@]} == 0)); then
	echo "cleanup.sh: nothing recorded under $E2E_RUN_ROOT"
	exit 0
fi

rc=0
for f in "${states[@]}"; do
	prefix=$(e2e_state_get prefix "$f")
	owner=$(e2e_state_get owner_pid "$f")
	if [[ -z $prefix || ${f##*/} != "$prefix.state" ]]; then
		echo "cleanup.sh: $f does not look like a harness state file; left alone" >&2
		rc=1
		continue
	fi
	if _e2e_same_proc "$owner" "$(e2e_state_get owner_start "$f")" && ((force == 0)); then
		echo "cleanup.sh: $prefix: its harness (PID $owner) is still running; skipped (--force)"
		continue
	fi
	nns=$(e2e_state_all netns "$f" | wc -l)
	nproc=$(e2e_state_all proc "$f" | wc -l)
	subnet=$(e2e_state_get route "$f")
	_e2e_teardown_state "$f"
	left=$(ip netns list | awk '{print $1}' | grep -c "^$prefix-")
	if ((left > 0)) || [[ -n $subnet && -n $(ip -4 route show exact "$subnet") ]]; then
		echo "cleanup.sh: $prefix: could not remove everything ($left namespaces left)" >&2
		rc=1
	else
		echo "cleanup.sh: $prefix: removed $nns namespaces, route ${subnet:-none}, stopped up to $nproc processes"
	fi
done
exit "$rc"
