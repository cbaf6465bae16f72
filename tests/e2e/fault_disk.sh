#!/usr/bin/env bash
# fault_disk.sh (CTest e2e_fault_disk): the disk of an agent's state
# directory is full. Release 1 runs; core-1's agent gets its state directory
# on a small tmpfs (its files copied in), filled to the last byte. Release 2
# of the core tier (fault-core-v2.yaml) is deployed: the agent must persist
# every instruction before it acts, cannot, runs nothing and reports that
# the step failed because its state cannot be saved ("No space left on
# device"), at once and without spinning; the deployment fails in prestage
# with zero hosts changed; the history is complete. Once space is freed the
# agents converge and the same plan succeeds.
#
#   sudo bash tests/e2e/fault_disk.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

ref_require
ref_up

if scenario disk "full disk in an agent's state directory"; then
	state=$E2E_RUN/agents/core-1/state
	proc_stop agent-core-1 || fail "stop agent-core-1"
	used=$(du -sk "$state" | cut -f1)
	e2e_mount_tmpfs "$state" "$((used + 512))k" || fail "tmpfs on $state"
	drover_agent_start core-1 || fail "start agent-core-1"
	drover_wait_agents connected 20 core-1 || fail "core-1 did not reconnect"
	dd if=/dev/zero of="$state/filler" bs=4k status=none 2>/dev/null || true
	[[ $(df --output=avail -k "$state" | tail -n1 | tr -d ' ') == 0 ]] || fail "the tmpfs is not full"
	ok "core-1's state directory: a tmpfs of $((used + 512)) KiB, full"

	plan_render fault-core-v2.yaml "$E2E_RUN/disk.yaml" START_DELAY_MS=0 DEADLINE=6s || fail "plan"
	id=$(dep_submit "$E2E_RUN/disk.yaml") || fail "submit"
	st=$(dep_wait_final "$id" 180) || fail "$id did not end"
	[[ $st == failed ]] || fail "$id ended $st ($(dep_get "$id" | jq -r .reason)), expected failed"
	ok "$id failed: $(dep_get "$id" | jq -r .reason)"
	msg=$(dep_get "$id" | jq -r '[.tiers[].services[].hosts[] | select(.id == "core-1" and .state == "failed") | .message][0] // ""')
	echo "# core-1 says: $msg"
	grep -q 'No space left on device' <<<"$msg" || fail "no clear message about the disk: '$msg'"
	ok "core-1 reports that it cannot save its state: no space left on device"
	[[ -z $(dep_hosts_touched "$id") ]] || fail "hosts touched: $(dep_hosts_touched "$id")"
	ok "$id: zero hosts changed"
	lines=$(grep -c 'cannot save the link state' "$(proc_log agent-core-1)" || true)
	((lines < 50)) || fail "core-1's agent logged 'cannot save the link state' $lines times: it spins"
	ok "core-1's agent did not spin on the full disk ($lines failed saves logged)"
	assert_fleet v1
	assert_events "$id"

	rm -f "$state/filler"
	ok "space freed on core-1"
	assert_converged
	dep_deploy "$E2E_RUN/disk.yaml" succeeded || fail "release 2 after the disk was freed"
	ok "$DEP_ID: the same plan succeeds once the disk has room"
	assert_fleet v1 project-coordinator=v2 agent-orchestrator=v2 model-orchestration=v2
	assert_events "$DEP_ID"
	assert_converged
fi
echo "fault_disk: $E2E_PASSED checks passed"
