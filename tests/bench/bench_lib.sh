# shellcheck shell=bash
# bench_lib.sh: helpers for the benchmark scripts (source me after setting
# TEST_NAME). Builds on tests/integration/link_lib.sh (a real droverd and
# real drover-agents on 127.0.0.1, random free ports, a private temp dir,
# only our own PIDs signalled) and adds:
#
#   BENCH_OUT                 where results go (default $DROVER_BUILD/bench)
#   bench_json NAME JSON      write $BENCH_OUT/NAME.json
#   proc_field PID FIELD      a kB field of /proc/PID/status (VmRSS, RssAnon...)
#   proc_pss PID              Pss of /proc/PID/smaps_rollup, kB
#   coord_production_timers   the link timers droverd ships with (poll 25 s)
#   nofile_raise              ulimit -n up to the hard limit; prints the result
#   BENCH_STORE=pg            droverd on a real PostgreSQL (tests/lib/pg.sh, fsync on
#                             like SQLite's synchronous=FULL) made by `droverd init
#                             --postgres`; `sql` runs on it; BENCH_SUFFIX is "-pg";
#                             BENCH_PG_FSYNC=off: the server without fsync (to see
#                             what durability costs)
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../integration/link_lib.sh
source "$BENCH_DIR/../integration/link_lib.sh"
BENCH_OUT=${BENCH_OUT:-$DROVER_BUILD/bench}
mkdir -p "$BENCH_OUT"
FLEETSIM=${FLEETSIM:-$DROVER_BUILD/tests/bench/fleetsim}
NULLCOORD=${NULLCOORD:-$DROVER_BUILD/tests/bench/nullcoord}
SIGBENCH=${SIGBENCH:-$DROVER_BUILD/tests/bench/sigbench}

BENCH_SUFFIX=
if [[ ${BENCH_STORE:-sqlite} == pg ]]; then
	# shellcheck source=../lib/pg.sh
	source "$BENCH_DIR/../lib/pg.sh"
	pg_trap _cleanup
	PG_FSYNC=${BENCH_PG_FSYNC:-on} pg_start "$TMP/pg" || fail "cannot start PostgreSQL"
	COORD_INIT_ARGS=(--postgres "$PG_CONNINFO" --node bench)
	sql() { pg_sql "$1"; }
	# bounded: SIGTERM, then SIGKILL after 10 s (a node that re-executes
	# itself as a follower instead of exiting must not hang the run)
	coord_stop() {
		_stop_pid "$COORD_PID"
		COORD_PID=
	}
	BENCH_SUFFIX=-pg
elif [[ ${BENCH_STORE:-sqlite} != sqlite ]]; then
	fail "BENCH_STORE=$BENCH_STORE: sqlite or pg"
fi

bench_json() { printf '%s\n' "$2" >"$BENCH_OUT/$1.json"; }

proc_field() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
proc_pss() { awk '$1 == "Pss:" { print $2 }' "/proc/$1/smaps_rollup"; }
proc_cpu_s() { awk -v t="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat"; }

coord_production_timers() {
	set_opt "$COORD/droverd.yaml" poll_timeout 25s
	set_opt "$COORD/droverd.yaml" liveness_timeout 50s
	set_opt "$COORD/droverd.yaml" pending_retry 5s
}

# bench_timeline PREFIX: what tests/bench/timeline.py reads, from droverd's
# store (SQLite or PostgreSQL): every instruction's times and every event,
# reports with their step and result.
bench_timeline() {
	local step="json_extract(data, '$.step_id')" result="json_extract(data, '$.result')"
	if [[ -n $BENCH_SUFFIX ]]; then
		step="(data::json->>'step_id')" result="(data::json->>'result')"
	fi
	sql "select step_id, issued_at_ms, sent_ms, acked_ms, agent_id from instructions" >"$1-instructions.txt"
	sql "select kind, agent_id, at_ms, case when kind = 'report' then $step else '' end,
		case when kind = 'report' then $result else '' end from events order by id" >"$1-events.txt"
}

# Each connected agent is one socket in droverd and one in fleetsim.
nofile_raise() {
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	ulimit -n
}
