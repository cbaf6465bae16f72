#!/usr/bin/env bash
# ops_logs.sh: `drover logs` against a real droverd and agents (CTest
# e2e_logs): a service's own output fetched over the signed link from every
# host that runs it (lines prefixed with the host), from one host with
# --lines, as JSON with offsets; --follow prints what a host writes next; a
# viewer may read logs until droverd.yaml's logs_role says otherwise (then
# 403, exit 3); an unknown service is exit 2; a release whose health check
# fails puts the service's last output into the host's failure reason.
#
#   sudo bash tests/e2e/ops_logs.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"
# shellcheck source=ui/plans.sh
source "$E2E_DIR/ui/plans.sh"

ops_require curl jq
ops_up

OUT=$E2E_RUN/logs-test
mkdir -p "$OUT"
VIEWER=$("$(e2e_bin droverd)" token create --role viewer --name watcher \
	--config "$DROVERD_DIR/droverd.yaml") || fail "token create"
DEPLOYER=$("$(e2e_bin droverd)" token create --role deployer --name ci \
	--config "$DROVERD_DIR/droverd.yaml") || fail "token create"
# as TOKEN ARGS...: drover with that token, in the control namespace.
as() {
	local tok=$1
	shift
	in_ns control env DROVER_ADDR="$DROVER_ADDR" DROVER_TOKEN="$tok" "$(e2e_bin drover)" "$@"
}

ops_plan "$OUT/v1.yaml" v1 0 1s
drover_cli deploy --wait "$OUT/v1.yaml" >"$OUT/v1.out" 2>&1 || fail "v1: $(tail -n 5 "$OUT/v1.out")"
ok "v1 deployed"

# ---- every host that runs the service, lines prefixed with the host
as "$VIEWER" logs project-coordinator >"$OUT/all.out" 2>"$OUT/all.err" ||
	fail "drover logs as a viewer: $(cat "$OUT/all.err")"
for h in "${OPS_CORE_HOSTS[@]}"; do
	grep -qE "^$h \| berry-svc name=project-coordinator version=v1 .*starting$" "$OUT/all.out" ||
		fail "no start line of $h: $(head -n 20 "$OUT/all.out")"
done
if grep -qE '^ui-[0-9] \|' "$OUT/all.out"; then fail "hosts that do not run the service answered"; fi
ok "drover logs SERVICE (viewer): the output of core-1..3, each line prefixed with its host"

# ---- one host, the last N lines, no prefix
as "$VIEWER" logs --host core-2 --lines 3 project-coordinator >"$OUT/one.out" || fail "--host --lines"
[[ $(wc -l <"$OUT/one.out") == 3 ]] || fail "--lines 3 printed $(wc -l <"$OUT/one.out") lines"
if grep -q '^core-2 |' "$OUT/one.out"; then fail "one host, yet prefixed"; fi
grep -q "name=project-coordinator" "$OUT/one.out" || fail "not project-coordinator's output"
as "$VIEWER" logs --json --host core-2 --lines 3 project-coordinator >"$OUT/one.json" || fail "--json"
jq -e '.service == "project-coordinator" and (.hosts | length) == 1 and .hosts[0].host == "core-2"
	and .hosts[0].offset > 0 and .hosts[0].instance == "project-coordinator"' "$OUT/one.json" >/dev/null ||
	fail "--json: $(cat "$OUT/one.json")"
ok "--host core-2 --lines 3: three lines, no prefix; --json with the file offset"

# ---- --follow prints what the host writes next
as "$VIEWER" logs --follow --host core-1 --lines 1 project-coordinator >"$OUT/follow.out" 2>&1 &
FOLLOW_PID=$!
e2e_at_exit "kill $FOLLOW_PID 2>/dev/null || true"
sleep 1
# berry-svc logs every request (this one answers 404: it is only a marker)
in_ns core-1 curl -sS --max-time 5 -o /dev/null "http://127.0.0.1:8080/follow-marker" || fail "curl core-1"
wait_for "the follower prints the new request" 20 grep -q "GET /follow-marker" "$OUT/follow.out" ||
	fail "--follow did not print the new line: $(tail -n 5 "$OUT/follow.out")"
kill "$FOLLOW_PID"
wait "$FOLLOW_PID" 2>/dev/null || true
ok "--follow: a request made after it started shows up"

# ---- errors
rc=0
as "$VIEWER" logs no-such-service >/dev/null 2>"$OUT/none.err" || rc=$?
[[ $rc == 2 ]] || fail "unknown service: exit $rc, want 2"
grep -q "no host runs service 'no-such-service'" "$OUT/none.err" || fail "unknown service: $(cat "$OUT/none.err")"
ok "an unknown service: exit 2 with the reason"

# ---- a failed health check puts the service's last output in the reason
ops_plan "$OUT/v3.yaml" v3 0 1s
rc=0
drover_cli deploy --wait "$OUT/v3.yaml" >"$OUT/v3.out" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "v3: exit $rc, want 1 (rolled back): $(tail -n 5 "$OUT/v3.out")"
msg=$(drover_cli status --json | jq -r '[.tiers[].services[].hosts[] | select(.state == "failed" or .message != "")][0].message')
[[ $msg == *"last output: "*"status=503"* ]] || fail "the failure reason lacks the service's output: $msg"
ok "a failed health check: the host's reason ends with the service's last output ($(cut -c1-60 <<<"${msg#*last output: }")...)"

# ---- logs_role: deployer and above only
grep -q '^logs_role:' "$DROVERD_DIR/droverd.yaml" && drover_conf_set "$DROVERD_DIR/droverd.yaml" logs_role deployer ||
	echo "logs_role: deployer" >>"$DROVERD_DIR/droverd.yaml"
proc_signal droverd TERM || fail "stop droverd"
proc_wait_gone droverd 20 || fail "droverd did not stop"
drover_control_start || fail "droverd restart"
drover_wait_agents connected 30 "${HOSTS[@]}" || fail "agents did not come back"
rc=0
as "$VIEWER" logs project-coordinator >/dev/null 2>"$OUT/role.err" || rc=$?
[[ $rc == 3 ]] || fail "a viewer with logs_role deployer: exit $rc, want 3"
grep -q "reading logs needs the deployer role" "$OUT/role.err" || fail "403 reason: $(cat "$OUT/role.err")"
as "$DEPLOYER" logs --lines 2 --host core-3 project-coordinator >/dev/null || fail "a deployer cannot read logs"
ok "logs_role deployer: a viewer is refused (403, exit 3), a deployer reads"
