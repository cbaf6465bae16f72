#!/usr/bin/env bash
# fault_link.sh (CTest e2e_fault_link): the link of a host is cut during a
# canary, then healed. Release 1 runs; api-gateway release 2 goes out as a
# canary (fault-canary.yaml: 10 %, 50 %, 100 %, each step waiting for
# `drover promote`, traffic shares as HAProxy weights).
#
#   at 10 % (ui-1 runs release 2 with ~10 % of the requests) ui-1's cable is
#   pulled until droverd sees the agent gone, then put back: the canary
#   waits on, unharmed. Promoted to 50 %, ui-2's cable is pulled and the
#   canary promoted to 100 %: the START for ui-2 cannot be delivered; once
#   the link heals (before the step's deadline) it is, and the deployment
#   succeeds: both ui hosts run release 2 with even weights, the other six
#   hosts still run release 1, the history is complete, the agents converge.
#
#   sudo bash tests/e2e/fault_link.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

ref_require
ref_up

# share SERVER: the share of api-gateway's weight SERVER has, in percent.
share() {
	local w1 w2
	w1=$(haproxy_server_field api-gateway ui-1 weight)
	w2=$(haproxy_server_field api-gateway ui-2 weight)
	if [[ $1 == ui-1 ]]; then echo $((w1 * 100 / (w1 + w2))); else echo $((w2 * 100 / (w1 + w2))); fi
}
# canary_at ID PERCENT: api-gateway waits for promote at PERCENT.
canary_at() {
	[[ $(dep_state "$1") == awaiting_promotion ]] || return 1
	[[ $(dep_svc "$1" api-gateway .weight) == "$2" ]] || {
		echo "weight $(dep_svc "$1" api-gateway .weight)"
		return 1
	}
}

if scenario link "link cut during a canary step, then healed"; then
	plan_render fault-canary.yaml "$E2E_RUN/canary.yaml" || fail "plan"
	id=$(dep_submit "$E2E_RUN/canary.yaml") || fail "submit"
	wait_for "canary at 10 %" 60 canary_at "$id" 10 || fail "canary did not reach 10 %"
	[[ $(host_version ui-1 8080) == v2 && $(host_version ui-2 8080) == v1 ]] ||
		fail "at 10 %: ui-1 $(host_version ui-1 8080), ui-2 $(host_version ui-2 8080)"
	s=$(share ui-1)
	((s >= 8 && s <= 12)) || fail "at 10 %: ui-1 has $s % of the weight"
	ok "canary at 10 %: ui-1 runs v2 with $s % of api-gateway's weight in HAProxy"

	link_cut ui-1
	drover_wait_agents disconnected 20 ui-1 || fail "droverd did not see ui-1 go"
	ok "ui-1's link cut: droverd sees its agent disconnected"
	link_heal ui-1
	drover_wait_agents connected 20 ui-1 || fail "ui-1 did not come back"
	[[ $(dep_state "$id") == awaiting_promotion ]] || fail "canary disturbed: $(dep_state "$id")"
	ok "ui-1's link healed: agent back, the canary still waits at 10 %"

	drover_cli promote "$id" >/dev/null || fail "promote to 50 %"
	wait_for "canary at 50 %" 60 canary_at "$id" 50 || fail "canary did not reach 50 %"
	s=$(share ui-1)
	((s >= 45 && s <= 55)) || fail "at 50 %: ui-1 has $s % of the weight"
	ok "canary at 50 %: weights even ($s %)"

	link_cut ui-2
	drover_cli promote "$id" >/dev/null || fail "promote to 100 %"
	t0=$(e2e_now_ms)
	drover_wait_agents disconnected 20 ui-2 || fail "droverd did not see ui-2 go"
	[[ $(host_version ui-2 8080) == v1 ]] || fail "ui-2 changed while cut off"
	[[ $(dep_state "$id") == running ]] || fail "while ui-2 is cut: $(dep_state "$id")"
	ok "promoted to 100 % with ui-2 cut off: ui-2 still on v1, deployment running"
	link_heal ui-2
	ok "ui-2's link healed after $(($(e2e_now_ms) - t0)) ms"
	ref_check_final "$id" succeeded v1 api-gateway=v2
	w1=$(haproxy_server_field api-gateway ui-1 weight)
	w2=$(haproxy_server_field api-gateway ui-2 weight)
	[[ $w1 == "$w2" && $w1 != 0 ]] || fail "weights after the canary: ui-1 $w1, ui-2 $w2"
	ok "HAProxy: ui-1 and ui-2 weighted evenly again ($w1)"
fi
echo "fault_link: $E2E_PASSED checks passed"
