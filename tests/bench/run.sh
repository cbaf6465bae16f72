#!/usr/bin/env bash
# run.sh: the benchmarks of docs/benchmarks.md, then one table of results.
#
#   bash tests/bench/run.sh [BUILD_DIR] [quick|full]      (make bench / make bench-full)
#
# quick (a few minutes): signatures, fan-out to 100 and 1,000 virtual agents
# (droverd against the nullcoord baseline), droverd's memory and CPU per idle
# agent at 1,000, drover-agent's RSS over 100 instructions, and, when the
# deployment engine and root are there, the rolling update drover vs Ansible
# on 20 namespaced hosts and a three-tier rolling deployment over 1,000
# simulated hosts; the fan-out and rolling at 1,000 on SQLite and on
# PostgreSQL side by side, and an HA group's failover (2 rounds).
# full: the same at the sizes of the issue: 5,000 agents (fan-out, idle
# memory and CPU), 10,000 connected, the rolling deployment over 1,000,
# 5,000 and 10,000 hosts, agent memory over 1,000 instructions, failover over
# 6 rounds.
# Results: one JSON per benchmark in BUILD_DIR/bench/, the table on stdout and
# in BUILD_DIR/bench/summary.txt. A benchmark that cannot run here is listed
# as skipped with its reason; one that fails makes the run fail.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=$(cd "${1:-$HERE/../../build}" && pwd)
MODE=${2:-quick}
export DROVER_BUILD=$BUILD
export DROVERD=$BUILD/coordinator/droverd DROVER_AGENT=$BUILD/agent/drover-agent
export DROVER_CLI=$BUILD/coordinator/ctl/drover
export BENCH_OUT=${BENCH_OUT:-$BUILD/bench}
mkdir -p "$BENCH_OUT"
LOG=$BENCH_OUT/logs
mkdir -p "$LOG"
rm -f "$BENCH_OUT"/*.json
declare -a STATUS=()
failed=0

for bin in "$DROVERD" "$DROVER_AGENT" "$DROVER_CLI" "$BUILD/tests/bench/fleetsim" \
	"$BUILD/tests/bench/nullcoord" "$BUILD/tests/bench/sigbench"; do
	[[ -x $bin ]] || { echo "run.sh: $bin is missing: build first (make)" >&2; exit 2; }
done

# step NAME CMD...: run one benchmark, its output to logs/NAME.log.
step() {
	local name=$1 t0 rc
	shift
	printf '%-28s ' "$name"
	t0=$(date +%s)
	"$@" >"$LOG/$name.log" 2>&1
	rc=$?
	case $rc in
	0) echo "done ($(($(date +%s) - t0)) s)"; STATUS+=("$name: ok") ;;
	77) echo "skipped: $(grep -m1 -i 'skip' "$LOG/$name.log" | cut -c1-120)"
		STATUS+=("$name: skipped") ;;
	*) echo "FAILED (exit $rc), see $LOG/$name.log"; tail -n 5 "$LOG/$name.log" | sed 's/^/    /'
		STATUS+=("$name: FAILED"); failed=1 ;;
	esac
}

sigbench() { "$BUILD/tests/bench/sigbench" --seconds "$1" --json "$BENCH_OUT/signatures.json"; }

echo "drover benchmarks ($MODE), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), results in $BENCH_OUT"
step signatures sigbench 3
if [[ $MODE == full ]]; then
	step fanout-100 bash "$HERE/fanout.sh" 100 5
	step fanout-1000 bash "$HERE/fanout.sh" 1000 3
	step fanout-5000 env FANOUT_WAIT=0 bash "$HERE/fanout.sh" 5000 1 60s
	step fanout-api-5000 env FANOUT_VIA=api bash "$HERE/fanout.sh" 5000 3
	# 10,000 agents connected (fleetsim is its own process; fanout.sh raises
	# RLIMIT_NOFILE to the hard limit and skips when that is below N + 256)
	step fanout-10000 env FANOUT_WAIT=0 bash "$HERE/fanout.sh" 10000 1 60s
else
	step fanout-100 bash "$HERE/fanout.sh" 100 3
	step fanout-1000 bash "$HERE/fanout.sh" 1000 2 30s
fi
step pull bash "$HERE/bench_pull.sh" "$BUILD" 48 5
if [[ $MODE == full ]]; then
	step agent-rss bash "$HERE/agent_rss.sh" 1000
else
	step agent-rss bash "$HERE/agent_rss.sh" 100
fi
step rolling-1000 bash "$HERE/rolling.sh" 1000
[[ $MODE == full ]] && step submit-10000 bash "$HERE/submit.sh" 10000
[[ $MODE == full ]] && step rolling-5000 env ROLLING_WAIT=db bash "$HERE/rolling.sh" 5000
[[ $MODE == full ]] && step rolling-10000 env ROLLING_WAIT=db bash "$HERE/rolling.sh" 10000
# issue 20: the same fan-out and rolling on SQLite and PostgreSQL side by
# side, and failover figures of an HA group (both need a PostgreSQL server)
if [[ $MODE == full ]]; then
	step store-compare-1000 bash "$HERE/store_compare.sh" 1000 3
	step failover bash "$HERE/failover.sh" 6
else
	step store-compare-1000 bash "$HERE/store_compare.sh" 1000 2
	step failover bash "$HERE/failover.sh" 2
fi
if [[ $MODE == full ]]; then
	step vs-ansible bash "$HERE/vs_ansible.sh" 20 4
else
	step vs-ansible bash "$HERE/vs_ansible.sh" 20 1
fi

echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >"$BENCH_OUT/load.txt"
bash "$HERE/summary.sh" "$BENCH_OUT" | tee "$BENCH_OUT/summary.txt"
printf '%s\n' "${STATUS[@]}" >"$BENCH_OUT/status.txt"
exit $failed
