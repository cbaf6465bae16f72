#!/usr/bin/env bash
# repro_ha_bluegreen.sh: a manual reproduction for issue 20, not a CTest
# test (about 15 s a round). ROUNDS (default 6) blue-green deployments of
# web on w-1..w-4 (real PostgreSQL, nodes a and b, four agents), each with
# a kill -9 of the leader at a point MODE picks:
#   switch   right after the traffic switch (as it_ha_strategies)
#   traffic  as soon as w-1 applied the switch's hook instruction
#   fin      as soon as w-1 applied its finalize instruction
#   delay    a random 0-7 s after the switch
#   mix      one of these at random each round (default)
# The last two can land after the agent applied an instruction but before
# the leader's 'sent' mark was committed. After each deployment succeeded:
# every host confirmed its finalize (no reason), no process of the old slot
# runs on any host (pid files), no step was resent in a loop, and the
# agents' lists show only the new release within 20 s.
#   ROUNDS=12 MODE=fin tests/integration/repro_ha_bluegreen.sh
# (needs DROVERD, DROVER_AGENT, DROVER_CLI as CTest sets them; KEEP_TMP=1
# keeps the logs).
TEST_NAME=ha_bgrepro
source "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"
# shellcheck source=ha_lib.sh
source "$REPO_DIR/tests/integration/ha_lib.sh"
ha_setup a b
ROUNDS=${ROUNDS:-6}
MODE=${MODE:-mix}
HOSTS=(w-1 w-2 w-3 w-4)
node_start a
wait_for 60 leads a || fail "node a does not lead"
node_start b
wait_for 30 follower_of b a || fail "node b does not follow"
for h in "${HOSTS[@]}"; do deploy_agent "$h" tier=web; done
wait_for 20 all_with a "${HOSTS[@]}" || fail "the agents are not with a"

plan() {
	cat >"$1" <<EOT
deployment: web
version: "$2"
defaults:
  driver: exec
  stop_grace: 2s
  health: none
tiers:
  - name: web
    services:
      - name: web
        image: $REG/berrys/berry:$2
        hosts: { labels: { tier: web } }
        port: 1
        command: [/bin/berry-svc, --name, web, --port, "1", --listen-addr, 127.0.0.1]
        env: { BERRY_START_DELAY_MS: "36000000" }
        strategy: { type: blue-green, green_port: 2, finalize_after: 6s,
                    traffic: { hook: { hosts: [w-1], run: [/bin/sh, -c, 'echo \$DROVER_TARGET >> $TMP/switches'] } } }
EOT
}
# listed: what the agents' lists say runs of web, "w-1:2.0.0/green ..."
listed() {
	"$CLI" agents --json | jq -r '[.[] | select(.id | startswith("w-")) | "\(.id):" + ([.releases[]? |
		select(.service == "web" and .state == "running") | "\(.version)/\(.slot)"] | join(","))] | join(" ")'
}
one_listed() { [[ $(listed | grep -o ',' | wc -l) == 0 ]]; }

plan "$TMP/w1.yaml" 1.0.0
"$CLI" deploy --wait "$TMP/w1.yaml" >"$TMP/w1.out" 2>&1 || fail "web 1.0.0"
ok "web 1.0.0 in blue: $(listed)"
leader=a follower=b
declare -A NLEAD=([a]=1 [b]=0)
for ((r = 1; r <= ROUNDS; r++)); do
	v=2.0.0 new=green old=blue
	((r % 2 == 0)) && v=1.0.0 new=blue old=green
	plan "$TMP/r$r.yaml" "$v"
	nsw=$(wc -l <"$TMP/switches")
	m=$MODE
	[[ $m == mix ]] && m=$(shuf -n1 -e fin delay switch traffic)
	if [[ $m == traffic || $m == fin ]]; then
		pat='msg="instruction applied" seq=[0-9]* step=dep-[^ ]*:traffic:'
		[[ $m == fin ]] && pat='msg="instruction applied" seq=[0-9]* step=dep-[^ ]*:finalize:'
		(
			set +eo pipefail
			timeout 90 tail -n0 -F "$TMP/w-1.log" 2>/dev/null | grep -m1 "$pat" >"$TMP/killer.$r"
			[[ -s $TMP/killer.$r ]] && kill -KILL "${PIDS[coord-$leader]}"
		) &
		killer=$!
	fi
	DEP=$("$CLI" deploy --json "$TMP/r$r.yaml" | jq -r .id)
	[[ $DEP == dep-* ]] || fail "round $r not submitted"
	if [[ $m == traffic || $m == fin ]]; then
		wait "$killer" || fail "round $r: w-1 applied no $m instruction"
	else
		wait_for 60 eval '(( $(wc -l <"$TMP/switches") > nsw ))' || fail "round $r: no switch"
		if [[ $m == delay ]]; then sleep "0.$((RANDOM % 10))" && sleep $((RANDOM % 7)); fi
	fi
	kill -KILL "${PIDS[coord-$leader]}" 2>/dev/null || true
	wait "${PIDS[coord-$leader]}" 2>/dev/null || true
	unset "PIDS[coord-$leader]"
	NLEAD[$follower]=$((NLEAD[$follower] + 1))
	wait_for $((LEASE_S * 4)) leads "$follower" "${NLEAD[$follower]}" ||
		fail "round $r: $follower does not lead"
	wait_for 90 dep_state_is "$DEP" succeeded ||
		fail "round $r: $DEP $(dep_get "$DEP" '{state,reason}')"
	[[ $(dep_get "$DEP" '.reason // ""') == "" ]] || fail "round $r: $DEP: $(dep_get "$DEP" .reason)"
	for h in "${HOSTS[@]}"; do
		slot_alive "$h" "web@$old" && fail "round $r ($m): $h still runs web@$old; listed: $(listed)"
		slot_alive "$h" "web@$new" || fail "round $r ($m): $h runs no web@$new"
	done
	resent=$(cat "$TMP"/coord-*.log | grep -c "msg=\"instruction resent\".*step=$DEP:" || true)
	((resent < 50)) || fail "round $r ($m): $resent resends of $DEP's steps"
	seen=$(listed)
	wait_for 20 one_listed || fail "round $r ($m): listed after 20 s: $(listed)"
	ok "round $r ($m, $v): $old stopped on every host; listed at success: $seen"
	node_start "$leader"
	wait_for 30 follower_of "$leader" "$follower" || fail "round $r: $leader does not follow"
	wait_for 20 all_with "$follower" "${HOSTS[@]}" || fail "round $r: agents not with $follower"
	t=$leader leader=$follower follower=$t
done
