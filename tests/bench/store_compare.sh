#!/usr/bin/env bash
# bench: the same fan-out and rolling benchmarks on both store engines in one
# run: SQLite (the default file, synchronous=FULL) and PostgreSQL (a real
# server started by tests/lib/pg.sh with fsync on, droverd made by `droverd
# init --postgres`: one node of a group, holding the lease). Prints both and
# the ratio PostgreSQL / SQLite (goal: at most 2).
#
#   store_compare.sh [N] [ROUNDS]   (default 1000 agents, 2 fan-out rounds)
#   -> $BENCH_OUT/store-compare-N.json; each engine's fanout[-pg]-N.json and
#      rolling[-pg]-N.json in $BENCH_OUT/store/ (apart from run.sh's own runs)
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
N=${1:-1000}
ROUNDS=${2:-2}
: "${DROVER_BUILD:?set DROVER_BUILD (run.sh does)}"
OUT=${BENCH_OUT:-$DROVER_BUILD/bench}
export BENCH_OUT=$OUT/store
mkdir -p "$BENCH_OUT"

[[ -x $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/initdb ]] ||
	{ echo "SKIPPED: no PostgreSQL server installed (make deps)" >&2; exit 77; }

run() { # STORE SCRIPT ARGS...
	local store=$1 script=$2
	shift 2
	echo "== $script $* on $store (load $(cut -d' ' -f1-3 /proc/loadavg))"
	BENCH_STORE=$store bash "$HERE/$script" "$@" || { echo "store_compare: $script on $store failed" >&2; exit 1; }
}
# Interleaved, so a change in the machine's load touches both engines alike.
run sqlite fanout.sh "$N" "$ROUNDS"
run pg fanout.sh "$N" "$ROUNDS"
run sqlite rolling.sh "$N"
run pg rolling.sh "$N"

out=$OUT/store-compare-$N.json
jq -n --slurpfile fs "$BENCH_OUT/fanout-$N.json" --slurpfile fp "$BENCH_OUT/fanout-pg-$N.json" \
	--slurpfile rs "$BENCH_OUT/rolling-$N.json" --slurpfile rp "$BENCH_OUT/rolling-pg-$N.json" \
	--arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '
	def row(name; s; p): {name: name, sqlite: s, pg: p,
	                      ratio: (if s > 0 then (p / s) * 100 | round / 100 else null end)};
	{agents: $fs[0].agents, load_end: $load, goal_ratio: 2,
	 rows: [row("fan-out: every agent holds its instruction (ms)"; $fs[0].median.droverd.first_all_ms; $fp[0].median.droverd.first_all_ms),
	        row("fan-out: every agent acknowledged (ms)"; $fs[0].median.droverd.acked_all_ms; $fp[0].median.droverd.acked_all_ms),
	        row("fan-out: deploy --wait (ms)"; $fs[0].median.droverd.deploy_ms; $fp[0].median.droverd.deploy_ms),
	        row("fan-out: droverd CPU (ms)"; $fs[0].median.droverd.coordinator_cpu_ms; $fp[0].median.droverd.coordinator_cpu_ms),
	        row("rolling: deploy --wait (s)"; $rs[0].deploy_s; $rp[0].deploy_s),
	        row("rolling: prestage fan-out (ms)"; $rs[0].prestage_fanout_ms; $rp[0].prestage_fanout_ms),
	        row("rolling: droverd CPU (s)"; $rs[0].coordinator_cpu_s; $rp[0].coordinator_cpu_s)]}
	| .within_goal = ([.rows[] | select(.name | test("CPU") | not) | .ratio != null and .ratio <= 2] | all)' >"$out" ||
	{ echo "store_compare: cannot read the results" >&2; exit 1; }
echo
echo "store engines, $N agents (medians; PostgreSQL with fsync on, SQLite synchronous=FULL)"
jq -r '.rows[] | [.name, (.sqlite | tostring), (.pg | tostring), (.ratio | tostring)] | @tsv' "$out" |
	awk -F'\t' 'BEGIN { printf "%-48s %10s %10s %6s\n", "", "SQLite", "PG", "PG/SQ" }
		{ printf "%-48s %10.1f %10.1f %6.2f\n", $1, $2, $3, $4 }'
echo "within 2x (times): $(jq -r .within_goal "$out"); load at the end $(jq -r .load_end "$out")"
