#!/usr/bin/env bash
# test_ha_strategies.sh: kill -9 of the leader of an HA group (tests/
# integration/ha_lib.sh: real PostgreSQL, nodes a and b each on its own
# addresses with its own key, four real agents listing both) in the middle
# of a canary and of a blue-green deployment. Each must end exactly as it
# would have without the failover:
#
#  1. canary 25% -> 50% -> 100% of alpha on w-1..w-4, a killed once the 25%
#     step runs 2.0.0: b resumes the canary where it stood; it succeeds, all
#     four hosts on 2.0.0, the host the canary had updated before the kill
#     is not started again (same pid), no step is queued twice.
#  2. blue-green of web on w-1..w-4 (a traffic hook on w-1 records each
#     switch), the leader b killed after the switch, while the old slot
#     waits out finalize_after: a (back as a follower) resumes the
#     finalize; it succeeds with every host confirming the finalize, the
#     switch ran exactly once (the hook's record: one "new", never "old"),
#     no blue process runs on any host (pid files, not only the agents'
#     lists), every host runs the new release in the green slot, no step
#     queued twice, no step resent in a loop.
#
# The services only sleep (they never listen: the agents share this
# machine's loopback), so health is none; what each agent runs is what it
# reports in its releases.
TEST_NAME=ha_strategies
source "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"
# shellcheck source=ha_lib.sh
source "$REPO_DIR/tests/integration/ha_lib.sh"
ha_setup a b
ok "PostgreSQL, nodes a and b with keys and addresses of their own"

HOSTS=(w-1 w-2 w-3 w-4)
node_start a
wait_for 60 leads a || fail "node a does not lead: $(tail -n 5 "$TMP/coord-a.log")"
node_start b
wait_for 30 follower_of b a || fail "node b does not serve as a's follower: $(health b)"
for h in "${HOSTS[@]}"; do deploy_agent "$h" tier=web; done
wait_for 20 all_with a "${HOSTS[@]}" || fail "the agents are not with a"
ok "node a leads, b follows; four agents with a"

# plan FILE VERSION TAG STRATEGY: alpha (canary) or web (blue-green) on w-*.
plan() {
	local svc=alpha strategy
	if [[ $4 == canary ]]; then
		strategy="{ type: canary, steps: [25%, 50%, 100%], pause: 3s }"
	else
		svc=web
		strategy="{ type: blue-green, green_port: 2, finalize_after: 6s,
                    traffic: { hook: { hosts: [w-1], run: [/bin/sh, -c, 'echo \$DROVER_TARGET >> $TMP/switches'] } } }"
	fi
	cat >"$1" <<EOT
deployment: $svc
version: "$2"
defaults:
  driver: exec
  stop_grace: 2s
  health: none
tiers:
  - name: web
    services:
      - name: $svc
        image: $REG/berrys/berry:$3
        hosts: { labels: { tier: web } }
        port: 1
        command: [/bin/berry-svc, --name, $svc, --port, "1", --listen-addr, 127.0.0.1]
        env: { BERRY_START_DELAY_MS: "36000000" }
        strategy: $strategy
EOT
}
# versions SERVICE: what each agent runs of it, "w-1=2.0.0 w-2=1.0.0 ..."
versions() {
	"$CLI" agents --json | jq -r --arg s "$1" '[.[] | select(.id | startswith("w-")) |
		"\(.id)=\([.releases[]? | select(.service == $s and .state == "running") | .version] | first // "-")"] | sort | join(" ")'
}
on_version() { versions "$1" | grep -o "=$2\b" | wc -l; }
dups() {
	pg_sql "SELECT count(*) FROM (SELECT agent_id, step_id FROM instructions WHERE deployment_id = '$1' GROUP BY agent_id, step_id HAVING count(*) > 1) x"
}
deploy_id() { "$CLI" deploy --json "$1" | jq -r .id; }

# 0. release 1.0.0 of alpha (canary) and of web (blue-green, blue slot)
plan "$TMP/a1.yaml" 1.0.0 1.0.0 canary
plan "$TMP/w1.yaml" 1.0.0 1.0.0 blue-green
"$CLI" deploy --wait "$TMP/a1.yaml" >"$TMP/a1.out" 2>&1 || fail "alpha 1.0.0: $(tail -n 5 "$TMP/a1.out")"
"$CLI" deploy --wait "$TMP/w1.yaml" >"$TMP/w1.out" 2>&1 || fail "web 1.0.0: $(tail -n 5 "$TMP/w1.out")"
wait_for 20 eval '[[ $(on_version alpha 1.0.0) == 4 && $(on_version web 1.0.0) == 4 ]]' ||
	fail "1.0.0: alpha $(versions alpha), web $(versions web)"
[[ $(tr '\n' ' ' <"$TMP/switches") == "new " ]] || fail "switches of web 1.0.0: $(cat "$TMP/switches")"
: >"$TMP/switches"
ok "alpha 1.0.0 (canary) and web 1.0.0 (blue-green, one switch) on the four hosts"

# 1. kill -9 of the leader in the middle of a canary
plan "$TMP/a2.yaml" 2.0.0 2.0.0 canary
DEP=$(deploy_id "$TMP/a2.yaml")
[[ $DEP == dep-* ]] || fail "canary 2.0.0 not submitted"
wait_for 60 eval '[[ $(on_version alpha 2.0.0) == 1 ]]' || fail "the 25% step never ran: $(versions alpha)"
first=$(versions alpha | grep -o "w-[0-9]=2.0.0" | cut -d= -f1)
pid_first=$(svc_pid "$first" alpha)
[[ $(dep_get "$DEP" .state) == running ]] || fail "$DEP is not running at 25%: $(dep_get "$DEP" '{state,reason}')"
node_kill a KILL
wait_for $((LEASE_S * 4)) leads b || fail "node b did not lead after the kill"
ok "kill -9 of a while the canary stood at 25% ($first on 2.0.0): b leads"
wait_for 90 dep_state_is "$DEP" succeeded || fail "$DEP after the failover: $(dep_get "$DEP" '{state,reason}')"
wait_for 20 eval '[[ $(on_version alpha 2.0.0) == 4 ]]' || fail "after the failover: $(versions alpha)"
[[ $(svc_pid "$first" alpha) == "$pid_first" ]] || fail "$first (updated before the kill) was started again"
[[ $(dups "$DEP") == 0 ]] || fail "$(dups "$DEP") steps of $DEP queued twice"
[[ $(dep_get "$DEP" '[.tiers[0].services[0].hosts[].state] | unique | join(",")') == succeeded ]] ||
	fail "hosts of $DEP: $(dep_get "$DEP" '.tiers[0].services[0].hosts')"
ok "b resumed the canary: succeeded, four hosts on 2.0.0, $first not restarted, no step queued twice"

# 2. kill -9 of the leader in the middle of a blue-green deployment
node_start a
wait_for 30 follower_of a b || fail "node a does not serve as b's follower: $(health a)"
wait_for 20 all_with b "${HOSTS[@]}" || fail "the agents are not with b"
plan "$TMP/w2.yaml" 2.0.0 2.0.0 blue-green
DEP=$(deploy_id "$TMP/w2.yaml")
[[ $DEP == dep-* ]] || fail "blue-green 2.0.0 not submitted"
switched() { [[ $(cat "$TMP/switches" 2>/dev/null) == new ]]; }
wait_for 60 switched || fail "web never switched: $(dep_get "$DEP" '{state,phase,reason}')"
[[ $(dep_get "$DEP" .state) == running ]] || fail "$DEP is not waiting to finalize: $(dep_get "$DEP" '{state,phase}')"
node_kill b KILL
wait_for $((LEASE_S * 4)) leads a 2 || fail "node a did not lead after the kill of b"
ok "kill -9 of b after web switched to green, before finalize: a leads again"
wait_for 90 dep_state_is "$DEP" succeeded || fail "$DEP after the failover: $(dep_get "$DEP" '{state,reason}')"
wait_for 20 eval '[[ $(on_version web 2.0.0) == 4 ]]' || fail "after the failover: $(versions web)"
[[ $(tr '\n' ' ' <"$TMP/switches") == "new " ]] || fail "the switches of $DEP: $(tr '\n' ' ' <"$TMP/switches")"
[[ $(dups "$DEP") == 0 ]] || fail "$(dups "$DEP") steps of $DEP queued twice"
# What runs, not what is listed: the finalize stopped blue on every host
# before the deployment succeeded (each host confirmed it: no reason), and
# green runs on each.
[[ $(dep_get "$DEP" '.reason // ""') == "" ]] || fail "$DEP: $(dep_get "$DEP" .reason)"
for h in "${HOSTS[@]}"; do
	slot_alive "$h" web@blue && fail "$h still runs web in blue (pid $(svc_pid "$h" web@blue))"
	slot_alive "$h" web@green || fail "$h runs no web in green"
done
# An instruction the agent had applied, resent by the new leader, is answered
# once and acknowledged (it was resent at every Poll until it expired).
resent=$(grep -c "msg=\"instruction resent\".*step=$DEP:" "$TMP/coord-a.log" || true)
((resent < 50)) || fail "$resent resends of $DEP's steps"
# The agents' release lists can lag the finalize by one Poll (a Poll's list
# taken while the finalize ran can reach droverd after the finalize's
# report; the next Poll corrects it): wait for them rather than read once.
web_slots() {
	slots=$("$CLI" agents --json | jq -r '[.[] | select(.id | startswith("w-")) | .releases[]? |
		select(.service == "web" and .state == "running") | "\(.version)/\(.slot)"] | unique | join(" ")')
	[[ $slots == "2.0.0/green" ]]
}
slots=
wait_for 20 web_slots || fail "web after finalize: $slots (want 2.0.0 in green only)"
ok "a resumed the blue-green: succeeded, four hosts on 2.0.0 in green (blue finalized away), one switch (never back), no step queued twice"
