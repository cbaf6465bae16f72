#!/usr/bin/env bash
# fault_agents.sh (CTest e2e_fault_agents): an agent dies or hangs in the
# middle of a rolling batch. Release 1 of the reference system runs; release
# 2 of the core tier (fault-core-v2.yaml: rolling, one host at a time, each
# START lasting ~3 s) is deployed three times:
#
#   stop  core-1's agent is SIGSTOPped while its START runs, past the step's
#         deadline: droverd fails the host on its own (an offline host never
#         hangs a batch) and rolls back; SIGCONT lets the rollback reach
#         core-1; every host runs release 1.
#   kill  core-1's agent is SIGKILLed while its START runs and restarted once
#         droverd sees it gone: the restarted agent finds the step it died
#         under in its state, still within its deadline, and resumes it (the
#         release already runs: only its health gate is left); the
#         deployment succeeds, core runs release 2. Release 1 is deployed
#         again for the next scenario.
#   term  the same with SIGTERM (systemctl restart): the stopping agent
#         leaves the step cut short by its stop unreported, the next one
#         resumes it; succeeded.
#
# Each: the deployment's event history is complete, and the agents converge
# (connected, nothing unacknowledged, reported releases = running ones).
#
#   sudo bash tests/e2e/fault_agents.sh            all three
#   sudo E2E_ONLY=stop bash tests/e2e/fault_agents.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

# fault_back_to_v1: release 1 everywhere again (the next scenario's START
# must replace something).
fault_back_to_v1() {
	plan_render berrys-v1.yaml "$E2E_RUN/back-v1.yaml" || fail "plan v1"
	dep_deploy "$E2E_RUN/back-v1.yaml" succeeded 240 || fail "release 1 again"
	assert_fleet v1
}

ref_require
ref_up

if scenario stop "agent SIGSTOP past its deadline"; then
	plan_render fault-core-v2.yaml "$E2E_RUN/stop.yaml" START_DELAY_MS=3000 DEADLINE=4s ||
		fail "plan"
	id=$(dep_submit "$E2E_RUN/stop.yaml") || fail "submit"
	dep_wait_host "$id" project-coordinator core-1 60 starting verifying ||
		fail "core-1 never started release 2"
	proc_signal agent-core-1 STOP || fail "stop agent-core-1"
	t0=$(e2e_now_ms)
	ok "core-1's agent SIGSTOPped during its START"
	dep_wait_state "$id" 90 rolling_back rolled_back failed ||
		fail "droverd did not give up on the hung host"
	ok "core-1 failed at its deadline while hung: $(dep_state "$id") after $(($(e2e_now_ms) - t0)) ms"
	st=$(dep_svc "$id" project-coordinator '[.hosts[] | select(.id == "core-2")][0].state')
	[[ $st == pending || $st == staged ]] || fail "core-2 is $st although core-1's batch failed"
	proc_signal agent-core-1 CONT || fail "cont agent-core-1"
	ref_check_final "$id" rolled_back v1
fi
if scenario kill "agent SIGKILL mid-batch"; then
	plan_render fault-core-v2.yaml "$E2E_RUN/kill.yaml" START_DELAY_MS=3000 DEADLINE=8s ||
		fail "plan"
	id=$(dep_submit "$E2E_RUN/kill.yaml") || fail "submit"
	dep_wait_host "$id" project-coordinator core-1 60 starting verifying ||
		fail "core-1 never started release 2"
	[[ $(dep_svc "$id" project-coordinator '[.hosts[] | select(.id == "core-2")][0].state') != succeeded ]] ||
		fail "core-2 already done: not mid-batch"
	proc_signal agent-core-1 KILL || fail "kill agent-core-1"
	proc_wait_gone agent-core-1 5 || fail "agent-core-1 survived SIGKILL"
	ok "core-1's agent SIGKILLed during its START (release 2 half-started)"
	drover_wait_agents disconnected 20 core-1 || fail "droverd did not see core-1 go"
	drover_agent_start core-1 || fail "restart agent-core-1"
	ok "core-1's agent restarted"
	ref_check_final "$id" succeeded v1 project-coordinator=v2 agent-orchestrator=v2 model-orchestration=v2
	grep -q 'msg="resuming a step an agent restart interrupted"' "$E2E_RUN/logs/agent-core-1.log" ||
		fail "core-1's agent did not say it resumed the step"
	ok "the restarted agent resumed the START it died under"
	fault_back_to_v1
fi

if scenario term "agent SIGTERM mid-batch (a restart)"; then
	plan_render fault-core-v2.yaml "$E2E_RUN/term.yaml" START_DELAY_MS=3000 DEADLINE=8s ||
		fail "plan"
	id=$(dep_submit "$E2E_RUN/term.yaml") || fail "submit"
	dep_wait_host "$id" project-coordinator core-1 60 starting verifying ||
		fail "core-1 never started release 2"
	proc_signal agent-core-1 TERM || fail "TERM agent-core-1"
	proc_wait_gone agent-core-1 5 || fail "agent-core-1 did not stop on SIGTERM"
	grep -q 'msg="step cut short by the agent stopping; it resumes at the next start"' \
		"$E2E_RUN/logs/agent-core-1.log" || fail "the stopping agent did not leave its step to resume"
	ok "core-1's agent stopped (SIGTERM) during its START, the step left to resume"
	drover_agent_start core-1 || fail "restart agent-core-1"
	ref_check_final "$id" succeeded v1 project-coordinator=v2 agent-orchestrator=v2 model-orchestration=v2
fi

echo "fault_agents: $E2E_PASSED checks passed"
