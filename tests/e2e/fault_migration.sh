#!/usr/bin/env bash
# fault_migration.sh (CTest e2e_fault_migration): a migration fails. Release
# 1 runs, db-1's database is at schema 41 with its rows. fault-migration.yaml
# is release 2 with two migrations: 0042 (fine) and 0043 (its `up` exits 1).
# The policy rolls the deployment back: the backup (pre hook) was taken and
# verified, 0042's `down` runs, no tier is touched; the database is at
# schema 41 again with every row it had and passes its integrity check.
# Every host still runs release 1, the event history is complete, the agents
# converge.
#
#   sudo bash tests/e2e/fault_migration.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

ref_require
ref_up

backups() { find "$E2E_RUN/fs/db-1/srv/berrys/backups" -name '*.db' 2>/dev/null | wc -l; }
# hook_state ID PHASE NAME: state of that hook run in the deployment object.
hook_state() {
	dep_get "$1" | jq -r --arg p "$2" --arg n "$3" \
		'[(.hooks // [])[] | select(.phase == $p and .name == $n) | .state] | last // "none"'
}

if scenario migration "a failing migration: its predecessors run down, no data lost"; then
	rows=$(db_sql 'SELECT group_concat(id || ":" || name) FROM berries;')
	nb=$(backups)
	[[ $(db_sql 'SELECT version FROM schema_version;') == 41 ]] || fail "schema not 41 before"
	plan_render fault-migration.yaml "$E2E_RUN/migration.yaml" || fail "plan"
	dep_deploy "$E2E_RUN/migration.yaml" rolled_back || fail "deploy"
	id=$DEP_ID
	ok "$id rolled back: $(dep_get "$id" | jq -r .reason)"
	echo "# hooks: $(dep_get "$id" | jq -c '[(.hooks // [])[] | {phase, name, state}]')"
	[[ $(hook_state "$id" pre backup-database) == succeeded ]] || fail "backup: $(hook_state "$id" pre backup-database)"
	[[ $(hook_state "$id" migrations 0042-add-plans-table) == succeeded ]] ||
		fail "0042 up: $(hook_state "$id" migrations 0042-add-plans-table) (expected succeeded)"
	[[ $(hook_state "$id" migrations-down 0042-add-plans-table) == succeeded ]] ||
		fail "0042 down: $(hook_state "$id" migrations-down 0042-add-plans-table) (expected succeeded)"
	[[ $(hook_state "$id" migrations 0043-plan-owners) == failed ]] ||
		fail "0043: $(hook_state "$id" migrations 0043-plan-owners) (expected failed)"
	ok "hooks: backup succeeded, 0042 up then down, 0043 failed"
	[[ $(db_sql 'SELECT version FROM schema_version;') == 41 ]] ||
		fail "schema $(db_sql 'SELECT version FROM schema_version;') after rollback (expected 41)"
	[[ -z $(db_sql "SELECT name FROM sqlite_master WHERE name = 'plans';") ]] || fail "table plans left"
	[[ $(db_sql 'PRAGMA integrity_check;') == ok ]] || fail "integrity check"
	[[ $(db_sql 'SELECT group_concat(id || ":" || name) FROM berries;') == "$rows" ]] ||
		fail "rows changed: $(db_sql 'SELECT group_concat(id || ":" || name) FROM berries;') (were $rows)"
	ok "database: schema 41, table plans gone, rows intact ($rows), integrity ok"
	(($(backups) == nb + 1)) || fail "backups: $(backups), expected $((nb + 1))"
	last=$(find "$E2E_RUN/fs/db-1/srv/berrys/backups" -name '*.db' -newer "$E2E_RUN/migration.yaml" | head -n1)
	[[ -n $last && $(sqlite3 "$last" 'PRAGMA integrity_check;') == ok &&
		$(sqlite3 "$last" 'SELECT group_concat(id || ":" || name) FROM berries;') == "$rows" ]] ||
		fail "the backup $last does not hold the rows"
	ok "the pre hook's backup holds every row (${last##*/})"
	[[ -z $(dep_hosts_touched "$id") ]] || fail "hosts touched: $(dep_hosts_touched "$id")"
	assert_fleet v1
	assert_events "$id"
	assert_converged
fi
echo "fault_migration: $E2E_PASSED checks passed"
