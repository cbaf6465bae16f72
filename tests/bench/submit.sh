#!/usr/bin/env bash
# bench: plan submission and targeting over N hosts, without a fleet. The
# store gets N accepted agents (rows written with sqlite3 before droverd
# starts, labels svc=ONE_OF_EIGHT as rolling.sh's fleet), then `drover
# deploy` submits the three-tier plan of rolling.sh (no --wait): parse,
# resolve every selector against the N agents, check their versions, create
# and save the deployment. Timed: the command, and droverd's CPU meanwhile.
# The agents are not connected: the deployment waits for them after.
#
#   submit.sh N   -> $BENCH_OUT/submit-N.json
# SUBMIT_PERF=FILE: perf record droverd meanwhile (perf report -i FILE).
TEST_NAME=bench_submit
source "$(dirname "$0")/bench_lib.sh"
N=${1:?usage: submit.sh N}
SERVICES=(project-coordinator agent-orchestrator model-orchestration planning-system
	tool-integration service-integration api-gateway web-dashboard)

coord_init --enroll-token
coord_production_timers
version=$("$DROVERD" --version | awk '{print $NF}')
{
	echo "BEGIN;"
	for ((i = 0; i < N; i++)); do
		printf "INSERT INTO agents (id, public_key, key_id, status, labels, agent_version,
			first_seen_ms, last_seen_ms) VALUES ('sim-%05d', randomblob(32), 'k%d',
			'accepted', '{\"svc\":\"%s\"}', '%s', 1, 1);\n" \
			"$i" "$i" "${SERVICES[i % 8]}" "$version"
	done
	echo "COMMIT;"
} >"$TMP/agents.sql"
sqlite3 "$COORD/droverd.db" <"$TMP/agents.sql" || fail "cannot write $N agents into the store"
coord_start
digest=sha256:$(printf 'fleetsim' | sha256sum | cut -d' ' -f1)
sed -e "s|@DIGEST@|$digest|g" "$BENCH_DIR/plans/tiers.yaml.in" >"$TMP/plan.yaml"
if [[ -n ${SUBMIT_PERF:-} ]]; then
	perf record -g -F 999 -p "$COORD_PID" -o "$SUBMIT_PERF" 2>"$TMP/perf.log" &
	PERF_PID=$!
	sleep 1
fi
cpu0=$(proc_cpu_s "$COORD_PID")
t0=$(date +%s%N)
"$CLI" deploy "$TMP/plan.yaml" >"$TMP/deploy.log" 2>&1 || fail "drover deploy: $(cat "$TMP/deploy.log")"
t1=$(date +%s%N)
cpu1=$(proc_cpu_s "$COORD_PID")
if [[ -n ${SUBMIT_PERF:-} ]]; then
	kill -INT "$PERF_PID"
	wait "$PERF_PID" || true
fi
[[ $(sql "select count(*) from deployments") == 1 ]] || fail "no deployment was created"
bench_json "submit-$N" "$(jq -n --argjson hosts "$N" --argjson ms "$(((t1 - t0) / 1000000))" \
	--argjson cpu "$(echo "$cpu1 - $cpu0" | bc)" \
	'{hosts: $hosts, deploy_ms: $ms, coordinator_cpu_s: $cpu,
	  note: "drover deploy without --wait; agents in the store, not connected"}')"
ok "plan over $N hosts submitted in $(((t1 - t0) / 1000000)) ms, droverd CPU $(echo "$cpu1 - $cpu0" | bc) s"
