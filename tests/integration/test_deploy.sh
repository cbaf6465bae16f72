#!/usr/bin/env bash
# test_deploy.sh: deployments end to end with the real droverd, three real
# drover-agents on 127.0.0.1 and a real registry: a two-tier rolling plan
# with `drover deploy --wait` (first install, then an upgrade), a version
# whose health check fails (automatic rollback, exit 1, every host back on
# the previous release), and droverd killed with SIGKILL in the middle of a
# deployment, then restarted: the same end state, no step run twice.
TEST_NAME=deploy
source "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"

deploy_setup
deploy_coord
deploy_agent core-1 tier=core
deploy_agent core-2 tier=core
deploy_agent edge-1 tier=edge
ok "registry, droverd and three accepted agents"

# 1. First install: no previous release anywhere.
plan_rolling "$TMP/v1.yaml" 1.0.0
"$CLI" deploy --wait "$TMP/v1.yaml" >"$TMP/deploy-v1.out" 2>&1 ||
	fail "deploy 1.0.0 exited $?: $(tail -n 20 "$TMP/deploy-v1.out")"
all_on 1.0.0 || fail "not every service runs 1.0.0"
ok "drover deploy --wait 1.0.0: exit 0, every host runs 1.0.0"

# 2. Upgrade: rolling through both tiers.
plan_rolling "$TMP/v2.yaml" 2.0.0
"$CLI" deploy --wait --json "$TMP/v2.yaml" >"$TMP/deploy-v2.json" 2>"$TMP/deploy-v2.err" ||
	fail "deploy 2.0.0 exited $?: $(tail -n 20 "$TMP/deploy-v2.err")"
all_on 2.0.0 || fail "not every service runs 2.0.0"
V2=$(jq -r .id "$TMP/deploy-v2.json")
[[ $(jq -r '.state' "$TMP/deploy-v2.json") == succeeded ]] || fail "v2 object: $(cat "$TMP/deploy-v2.json")"
[[ $(jq -r '[.tiers[].services[].hosts[] | select(.state == "succeeded" and .from_version == "1.0.0" and .to_version == "2.0.0")] | length' "$TMP/deploy-v2.json") == 3 ]] ||
	fail "hosts of v2: $(jq -c '[.tiers[].services[].hosts[]]' "$TMP/deploy-v2.json")"
[[ $(jq -r '.tiers | map(.state) | join(",")' "$TMP/deploy-v2.json") == done,done ]] || fail "tier states"
[[ $(jq -r '.tiers[0].services[0].digest' "$TMP/deploy-v2.json") == sha256:* ]] || fail "no digest"
ok "drover deploy --wait 2.0.0: exit 0, every host on 2.0.0, object shows from/to versions and digests"

# The events of the deployment, in order.
curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" \
	"$DROVER_ADDR/v1/events?deployment=$V2&follow=0&tail=1000" >"$TMP/events-v2.txt"
for kind in deployment_created started state host tier_done succeeded; do
	grep -q "^event: $kind\$" "$TMP/events-v2.txt" || fail "no $kind event for $V2"
done
ok "events of $V2: deployment_created, started, state, host, tier_done, succeeded"

# 3. A version that never gets healthy: automatic rollback, exit 1.
plan_rolling "$TMP/v3.yaml" 3.0.0
rc=0
"$CLI" deploy --wait --json "$TMP/v3.yaml" >"$TMP/deploy-v3.json" 2>"$TMP/deploy-v3.err" || rc=$?
[[ $rc == 1 ]] || fail "deploy 3.0.0 exited $rc, want 1: $(tail -n 20 "$TMP/deploy-v3.err")"
[[ $(jq -r .state "$TMP/deploy-v3.json") == rolled_back ]] || fail "v3 state: $(jq -c '{state,reason}' "$TMP/deploy-v3.json")"
all_on 2.0.0 || fail "after the rollback not every service runs 2.0.0"
ok "drover deploy --wait 3.0.0 (unhealthy): exit 1, rolled_back, every host back on 2.0.0"

# 4. A busy name: a second deployment of berrys while one runs is refused.
plan_rolling "$TMP/slow.yaml" 1.0.0 2500
"$CLI" deploy --json "$TMP/slow.yaml" >"$TMP/slow.json" || fail "deploy slow"
SLOW=$(jq -r .id "$TMP/slow.json")
rc=0
"$CLI" deploy "$TMP/v2.yaml" >"$TMP/busy.out" 2>&1 || rc=$?
[[ $rc != 0 ]] && grep -q busy "$TMP/busy.out" || fail "second deployment not refused: $(cat "$TMP/busy.out")"
ok "a second deployment of the same name is refused (busy)"

# 5. kill -9 of droverd in the middle of $SLOW (tier core done, edge running).
edge_started() { [[ $(dep_get "$SLOW" '.tiers[1].services[0].hosts[0].state') == starting ]]; }
wait_for 60 edge_started || fail "edge tier of $SLOW never started: $(dep_get "$SLOW" '{state,reason}')"
pid_alpha=$(svc_pid core-1 alpha)
pid_beta=$(svc_pid core-2 beta)
coord_stop KILL
ok "droverd killed (SIGKILL) while $SLOW runs its second tier"
coord_start
wait_for 60 dep_state_is "$SLOW" succeeded || fail "$SLOW after restart: $(dep_get "$SLOW" '{state,reason}')"
all_on 1.0.0 || fail "after the restart not every service runs 1.0.0"
[[ $(svc_pid core-1 alpha) == "$pid_alpha" && $(svc_pid core-2 beta) == "$pid_beta" ]] ||
	fail "a finished host was started again after the restart"
dup=$(sql "SELECT count(*) FROM (SELECT agent_id, step_id FROM instructions WHERE deployment_id = '$SLOW' GROUP BY agent_id, step_id HAVING count(*) > 1)")
[[ $dup == 0 ]] || fail "$dup steps queued twice"
ok "after the restart $SLOW succeeded; finished hosts were not touched again; no step queued twice"

"$CLI" history >"$TMP/history.out" || fail "drover history"
grep -q "$SLOW" "$TMP/history.out" || fail "history lacks $SLOW"
ok "drover history lists the deployments"

# 6. kill -9 during a rollback: the previous release (1.0.0, started with a
# 2.5 s start delay) comes back slowly, so the deployment is caught
# rolling_back; after the restart it still ends rolled_back, on 1.0.0.
"$CLI" deploy --json "$TMP/v3.yaml" >"$TMP/v3b.json" || fail "deploy v3 again"
V3B=$(jq -r .id "$TMP/v3b.json")
wait_for 60 dep_state_is "$V3B" rolling_back || fail "$V3B never rolling back: $(dep_get "$V3B" '{state,reason}')"
coord_stop KILL
ok "droverd killed (SIGKILL) while $V3B rolls back"
coord_start
wait_for 90 dep_state_is "$V3B" rolled_back || fail "$V3B after restart: $(dep_get "$V3B" '{state,reason}')"
all_on 1.0.0 || fail "after the restarted rollback not every service runs 1.0.0"
dup=$(sql "SELECT count(*) FROM (SELECT agent_id, step_id FROM instructions WHERE deployment_id = '$V3B' GROUP BY agent_id, step_id HAVING count(*) > 1)")
[[ $dup == 0 ]] || fail "$dup steps queued twice"
ok "after the restart $V3B rolled back: every host on 1.0.0, no step queued twice"

# 7. A saved state that no longer loads (here: damaged by hand while droverd
# is down) ends the deployment failed with the reason; the name is free again.
plan_rolling "$TMP/slow2.yaml" 2.0.0 2500
"$CLI" deploy --json "$TMP/slow2.yaml" >"$TMP/bad-state.json" || fail "deploy for the damaged state"
BAD=$(jq -r .id "$TMP/bad-state.json")
wait_for 30 dep_state_is "$BAD" running || fail "$BAD not running"
coord_stop KILL
sql "UPDATE deployments SET seq_state = '{\"v\": 999}' WHERE id = '$BAD'"
coord_start
wait_for 30 dep_state_is "$BAD" failed || fail "$BAD: $(dep_get "$BAD" '{state,reason}')"
[[ $(dep_get "$BAD" .reason) == "cannot resume: "* ]] || fail "reason: $(dep_get "$BAD" .reason)"
"$CLI" deploy --wait "$TMP/v1.yaml" >"$TMP/after-bad.out" 2>&1 || fail "deploy after a failed resume: $(tail -n 5 "$TMP/after-bad.out")"
all_on 1.0.0 || fail "not on 1.0.0 after the last deployment"
ok "a saved state that does not load: $BAD failed (cannot resume), the next deployment runs"

# The metrics of deployments.
curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$DROVER_ADDR/metrics" >"$TMP/metrics.txt"
grep -q '^drover_deployments{state="rolled_back"} 2$' "$TMP/metrics.txt" ||
	fail "deployments gauge: $(grep '^drover_deployments' "$TMP/metrics.txt")"
grep -q '^drover_deployments{state="succeeded"} 4$' "$TMP/metrics.txt" || fail "succeeded gauge"
grep -q '^drover_deployments{state="failed"} 1$' "$TMP/metrics.txt" || fail "failed gauge"
grep -q '^drover_deploy_step_duration_seconds_count{kind="[a-z]*"} [1-9]' "$TMP/metrics.txt" ||
	fail "no step durations"
ok "metrics: deployments by state, step durations"
