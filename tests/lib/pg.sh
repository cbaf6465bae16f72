# shellcheck shell=bash
# pg.sh: a throwaway PostgreSQL server for a test: initdb in a temporary
# directory as an unprivileged user (nobody when run as root), listening on a
# unix socket only (no TCP port), stopped and removed by pg_stop.
#
#   pg_start DIR    start a server in DIR (made by the caller); sets PG_SOCK
#                   (the socket directory) and PG_CONNINFO (libpq conninfo,
#                   database postgres, user drover, trust on the socket)
#   pg_stop         stop it (immediate) and remove its data
#   pg_sql SQL      run SQL as drover (psql, no .psqlrc)
#
# PG_FSYNC=on makes the server durable (benchmarks against SQLite's
# synchronous=FULL); tests run with fsync off. PG_LISTEN (listen_addresses,
# e.g. 127.0.0.1), PG_PORT (default 5432) and PG_NETNS (a network namespace
# the test made: the server runs in it, its TCP port on that loopback) are
# for tests that need TCP as well as the socket. PG_STATS_DUMP=FILE counts
# the statements the server ran (pg_stat_statements; a bench at exit, see
# pg_stats_dump).

# shellcheck source=/dev/null # (budget.sh, checked on its own)
source "$(dirname "${BASH_SOURCE[0]}")/budget.sh"

# the newest server version installed (the names are numbers: ls is fine)
# shellcheck disable=SC2012
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
PG_DIR=
PG_SOCK=
PG_CONNINFO=

pg_as() {
	if ((EUID == 0)); then
		setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
	else
		"$@"
	fi
}

pg_start() {
	PG_DIR=$1
	[[ -x $PG_BIN/initdb ]] || {
		echo "pg: no PostgreSQL server (initdb) under ${PG_BIN:-/usr/lib/postgresql}" >&2
		return 1
	}
	mkdir -p "$PG_DIR/data" "$PG_DIR/sock"
	if ((EUID == 0)); then
		chown -R nobody:nogroup "$PG_DIR"
		# the server's user must reach its directory (search, not list)
		chmod o+x "$(dirname "$PG_DIR")"
	fi
	chmod 700 "$PG_DIR/data"
	pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U drover -A trust --no-sync -E UTF8 \
		>"$PG_DIR/initdb.log" 2>&1 || {
		echo "pg: initdb failed:" >&2
		cat "$PG_DIR/initdb.log" >&2
		return 1
	}
	PG_SOCK=$PG_DIR/sock
	local pre=()
	[[ -n ${PG_NETNS:-} ]] && pre=(ip netns exec "$PG_NETNS")
	((EUID == 0)) && pre+=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
	"${pre[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
		-o "-k $PG_SOCK -c listen_addresses=${PG_LISTEN:-} -p ${PG_PORT:-5432} -c fsync=${PG_FSYNC:-off} -c max_connections=200${PG_STATS_DUMP:+ -c shared_preload_libraries=pg_stat_statements}" start \
		>/dev/null || {
		echo "pg: server did not start:" >&2
		cat "$PG_DIR/server.log" >&2
		return 1
	}
	PG_CONNINFO="host=$PG_SOCK port=${PG_PORT:-5432} dbname=postgres user=drover"
	export PG_SOCK PG_CONNINFO
}

# PG_STATS_DUMP=FILE: the statements the server ran, counted
# (pg_stat_statements), written to FILE at exit as calls|ms|statement
pg_stats_dump() {
	[[ -n ${PG_STATS_DUMP:-} && -n $PG_SOCK ]] || return 0
	pg_sql "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null 2>&1
	pg_sql "SELECT calls, round(total_exec_time::numeric, 1),
	        regexp_replace(query, '\s+', ' ', 'g') FROM pg_stat_statements
	        ORDER BY calls DESC LIMIT 60" >"$PG_STATS_DUMP" 2>&1
}

pg_stop() {
	[[ -n $PG_DIR && -d $PG_DIR/data ]] || return 0
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
	rm -rf "$PG_DIR/data" "$PG_DIR/sock"
}

# pg_trap FN: at exit, stop PostgreSQL, then run the test's own cleanup FN
# with the test's exit status in $? (FN ends by exit with it, as link_lib's
# _cleanup does). Safe under set -e: a trap that re-raises the status with
# `(exit $rc)` would end there and skip FN.
pg_trap() {
	_PG_THEN=$1
	trap _pg_exit EXIT
}
_pg_rc() { return "$1"; }
_pg_exit() {
	local rc=$?
	budget_end
	pg_stats_dump
	pg_stop >/dev/null 2>&1 || true
	_pg_rc "$rc" || "$_PG_THEN"
	"$_PG_THEN"
}

pg_sql() {
	PSQLRC=/dev/null "$PG_BIN/psql" -X -q -At -h "$PG_SOCK" -p "${PG_PORT:-5432}" -U drover -d postgres -c "$1"
}
