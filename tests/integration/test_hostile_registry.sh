#!/usr/bin/env bash
# A hostile registry cannot hold a pull (issue 14): droverd and a real
# drover-agent, and hostile_registry.py on 127.0.0.1 serving an endless 500
# body, a manifest dripping one byte every 0.2 s, and a server that never
# answers. Each prestage fails with a clear error by its step deadline (the
# plan's prestage_timeout), and the agent stops on SIGTERM within 1 s while
# it is pulling.
TEST_NAME=hostile_registry
source "$(dirname "$0")/link_lib.sh"
command -v python3 >/dev/null || {
	echo "SKIPPED $TEST_NAME: python3 is not installed (make deps)" >&2
	exit 77
}

REG_PID=
# set +e first: under set -e the wait's status (or the "(exit $rc)" that
# hands the status on) would end the trap before _cleanup stops droverd
trap 'rc=$?; set +e; budget_end; [[ -n $REG_PID ]] && { kill "$REG_PID"; wait "$REG_PID"; } 2>/dev/null; (exit $rc); _cleanup' EXIT
python3 "$LIB_DIR/hostile_registry.py" "$TMP/reg.port" "$TMP/registry.log" &
REG_PID=$!
wait_for 10 test -s "$TMP/reg.port" || fail "the hostile registry did not start"
REG=127.0.0.1:$(cat "$TMP/reg.port")

coord_init --enroll-token
coord_start
agent_init a1 --enroll-token-file "$COORD/enroll.token"
set_opt "$TMP/a1/agent.yaml" insecure_registry true
agent_start a1
wait_for 30 is_state a1 connected || fail "a1 did not connect"
ok "droverd, agent a1 and the hostile registry on $REG"

DIGEST=sha256:$(printf 'hostile' | sha256sum | cut -d' ' -f1)
# plan NAME REPO TIMEOUT: one exec service on a1 from REG/REPO, pinned.
plan() {
	cat >"$TMP/$1.yaml" <<-EOF
		deployment: $1
		version: "1.0.0"
		defaults:
		  driver: exec
		  prestage_timeout: $3
		  health: { tcp: { port: 8080 }, deadline: 10s }
		  failure: { max_failed_hosts: 0, rollback: none }
		tiers:
		  - name: t
		    services:
		      - name: svc
		        image: "$REG/$2/x@$DIGEST"
		        hosts: [a1]
		        command: [/bin/svc]
	EOF
	"$CLI" plan check "$TMP/$1.yaml" >/dev/null || fail "plan $1: $("$CLI" plan check "$TMP/$1.yaml" 2>&1)"
}
# the failed prestage report of deployment NAME: "step duration ms|message"
# (the step's own duration: the deadline counts from when the step starts)
failed_report() {
	sql "select json_extract(data, '\$.duration_ms'), json_extract(data, '\$.message') from events where kind = 'report'
	     and json_extract(data, '\$.result') = 'failed' and json_extract(data, '\$.step_id') like '$1%'
	     order by id limit 1"
}
has_failed() { [[ -n $(failed_report "$1") ]]; }
dep_id() { sql "select id from deployments where name = '$1' order by n desc limit 1"; }
submit() { # NAME: deploy, print when (ms)
	"$CLI" deploy "$TMP/$1.yaml" >"$TMP/$1.out" 2>&1 || fail "deploy $1: $(cat "$TMP/$1.out")"
}

# 1. an endless 500 body: read up to the error-body cap, then a clear error
plan endless endless500 20s
submit endless
id=$(dep_id endless)
wait_for 40 has_failed "$id" || fail "no failed report for the endless 500 within 40 s"
IFS='|' read -r dur msg <<<"$(failed_report "$id")"
[[ $msg == *"HTTP 500"*"error body over 2048 bytes"* ]] || fail "endless 500: message: $msg"
((dur < 20000)) || fail "endless 500: the step took $dur ms, not less than its 20 s deadline"
ok "an endless 500 body: the step fails in $dur ms: $msg"

# 2. a manifest dripping forever: the step fails at its deadline (4 s)
plan drip drip 4s
submit drip
id=$(dep_id drip)
wait_for 30 has_failed "$id" || fail "no failed report for the dripping manifest"
IFS='|' read -r dur msg <<<"$(failed_report "$id")"
[[ $msg == *"pull stopped at the step deadline"* ]] || fail "drip: message: $msg"
# the pull looks at its deadline every 100 ms; the rest of the slack is for
# a CPU-starved agent to get scheduled and write the report
((dur >= 3900 && dur < 4000 + 1500)) || fail "drip: the step took $dur ms, deadline 4000 ms"
wait_for 5 grep -q '^/v2/drip/.* closed after' "$TMP/registry.log" || fail "the agent kept the dripping connection open"
ok "a dripping manifest: the step fails at its 4 s deadline ($dur ms): $msg"

# 3. a silent server: same, nothing ever arrives
plan silent silent 3s
submit silent
id=$(dep_id silent)
wait_for 30 has_failed "$id" || fail "no failed report for the silent registry"
IFS='|' read -r dur msg <<<"$(failed_report "$id")"
[[ $msg == *"pull stopped at the step deadline"* ]] || fail "silent: message: $msg"
((dur >= 2900 && dur < 3000 + 1500)) || fail "silent: the step took $dur ms, deadline 3000 ms"
ok "a registry that never answers: the step fails at its 3 s deadline ($dur ms)"

# 4. SIGTERM while pulling from the drip: the agent is gone within 1 s
plan long drip 120s
n=$(grep -c '^/v2/drip/.* open' "$TMP/registry.log")
submit long
pulling() { (($(grep -c '^/v2/drip/.* open' "$TMP/registry.log") > n)); }
wait_for 30 pulling || fail "the agent did not start pulling"
sleep 0.5
t0=$(date +%s%N)
kill -TERM "${PIDS[a1]}"
for ((i = 0; i < 1000; i++)); do
	kill -0 "${PIDS[a1]}" 2>/dev/null || break
	sleep 0.01
done
ms=$((($(date +%s%N) - t0) / 1000000))
rc=0
wait "${PIDS[a1]}" || rc=$?
unset "PIDS[a1]"
((rc == 0)) || fail "the agent exited $rc after SIGTERM"
((ms < 1000)) || fail "the agent took $ms ms to stop while pulling"
grep -q 'msg="stopped"' "$TMP/a1.log" || fail "no clean stop in the agent's log"
! grep -q 'shutdown did not finish' "$TMP/a1.log" || fail "the agent's watchdog fired"
grep -q 'pull cancelled: the agent is stopping' "$TMP/a1/state/link.json" "$TMP/a1.log" 2>/dev/null ||
	grep -q 'cancelled' "$TMP/a1.log" || fail "the cancelled pull is not said anywhere"
ok "SIGTERM while pulling from the dripping registry: the agent stopped in $ms ms, cleanly"
echo "$TEST_NAME: all $PASSED checks passed"
