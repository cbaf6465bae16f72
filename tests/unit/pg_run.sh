#!/usr/bin/env bash
# pg_run.sh TEST [ARGS...]: run a store unit test against a PostgreSQL server
# of its own (tests/lib/pg.sh): DRV_TEST_PG holds the conninfo; the test
# resets the schema before each case (tests/unit/store_target.h).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/pg.sh
. "$here/../lib/pg.sh"
dir=$(mktemp -d /tmp/drv-pg-XXXXXX)
trap 'budget_end; pg_stop; rm -rf "$dir"' EXIT
budget_start
pg_start "$dir"
DRV_TEST_PG=$PG_CONNINFO "$@"
