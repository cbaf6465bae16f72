#!/usr/bin/env bash
# fault_droverd.sh (CTest e2e_fault_droverd): droverd is SIGKILLed at several
# points of a deployment and started again; it resumes from what it persisted
# and the agents (idempotent by step id) apply every step once.
#
#   release 2 of the reference system (berrys-v2.yaml, images pinned by
#   digest): killed during prestage (the registry is paused so that the
#   pulls hang in flight, and resumed after the restart), while the core
#   tier rolls, and in the middle of api-gateway's canary; it still
#   succeeds, every host runs v2, migration 0042 ran once.
#   release 3 (berrys-v3.yaml, its health checks fail): killed while it rolls
#   back (db-1's agent is paused once 0043 went up, so the rollback waits on
#   0043's down; resumed after the restart); it still ends rolled back,
#   every host runs v2 again, the schema is back at 42.
#
# Each: the event history is complete (events persisted before the kill are
# still there, none twice), the agents converge.
#
#   sudo bash tests/e2e/fault_droverd.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

ref_require
ref_up

tier_is() {
	[[ $(dep_get "$1" | jq -r --arg t "$2" '.tiers[] | select(.name == $t) | .state') == "$3" ]]
}
tier_running() { tier_is "$1" "$2" running; }
mig_up() {
	[[ $(dep_get "$1" | jq -r '[.hooks[] | select(.phase == "migrations" and .name == "0043-plan-owners") | .state][0]') == succeeded ]]
}
canary_mid() {
	local st
	st=$(dep_svc "$1" api-gateway .canary_step)
	[[ $st =~ ^[0-9]+$ ]] && ((st >= 2))
}

if scenario release2 "droverd SIGKILL during prestage, a rolling tier, a canary"; then
	plan_render berrys-v2.yaml "$E2E_RUN/v2.yaml" || fail "plan"
	plan_pin "$E2E_RUN/v2.yaml" v2 || fail "plan_pin"
	# project-coordinator's new release listens 2 s late: the core tier
	# runs for 4 s or more, long enough to be caught running
	sed -i 's/env: { LOG_LEVEL: info }/env: { LOG_LEVEL: info, BERRY_START_DELAY_MS: "2000" }/' \
		"$E2E_RUN/v2.yaml"
	grep -q BERRY_START_DELAY_MS "$E2E_RUN/v2.yaml" || fail "no start delay in the plan"
	proc_signal registry STOP || fail "pause the registry"
	id=$(dep_submit "$E2E_RUN/v2.yaml") || fail "submit"
	dep_wait_state "$id" 30 prestaging || fail "no prestage"
	restart_droverd || fail "restart droverd (prestage)"
	[[ $(dep_state "$id") == prestaging ]] || fail "after the restart: $(dep_state "$id")"
	proc_signal registry CONT || fail "resume the registry"
	ok "droverd killed during prestage (pulls in flight), restarted: $id still prestaging"
	wait_for "core tier running" 60 tier_running "$id" core || fail "core tier never ran"
	restart_droverd || fail "restart droverd (core tier)"
	ok "droverd killed while the core tier rolled, restarted ($(dep_state "$id"))"
	wait_for "api-gateway mid-canary" 90 canary_mid "$id" || fail "the canary never ran"
	restart_droverd || fail "restart droverd (canary)"
	ok "droverd killed in the middle of the canary, restarted ($(dep_state "$id"))"
	ref_check_final "$id" succeeded v2
	[[ $(db_sql 'SELECT version FROM schema_version;') == 42 ]] || fail "schema not at 42"
	runs=$(cat "$E2E_RUN"/agents/db-1/logs/hooks/0042-add-plans-table-*_up_*.log | grep -c 'at schema version')
	((runs == 1)) || fail "migration 0042 ran $runs times"
	ok "migration 0042 ran exactly once on db-1 (schema 42)"
fi

if scenario release3 "droverd SIGKILL during an automatic rollback"; then
	if [[ -n ${E2E_ONLY:-} && " $E2E_ONLY " != *" release2 "* ]]; then
		plan_render berrys-v2.yaml "$E2E_RUN/v2.yaml" || fail "plan"
		dep_deploy "$E2E_RUN/v2.yaml" succeeded || fail "release 2"
	fi
	plan_render berrys-v3.yaml "$E2E_RUN/v3.yaml" || fail "plan"
	id=$(dep_submit "$E2E_RUN/v3.yaml") || fail "submit"
	wait_for "0043 up" 60 mig_up "$id" || fail "migration 0043 never went up"
	proc_signal agent-db-1 STOP || fail "pause db-1's agent"
	dep_wait_state "$id" 90 rolling_back || fail "release 3 never rolled back"
	wait_for "tier core rolled back" 60 tier_is "$id" core rolled_back || fail "core not rolled back"
	restart_droverd "${REF_HOSTS[@]:0:6}" || fail "restart droverd (rollback)"
	[[ $(dep_state "$id") == rolling_back ]] || fail "after the restart: $(dep_state "$id")"
	proc_signal agent-db-1 CONT || fail "resume db-1's agent"
	ok "droverd killed while $id rolled back (0043's down pending), restarted: still rolling back"
	ref_check_final "$id" rolled_back v2
	[[ $(db_sql 'SELECT version FROM schema_version;') == 42 ]] || fail "schema not back at 42"
	ok "migration 0043 went down (schema 42)"
fi
echo "fault_droverd: $E2E_PASSED checks passed"
