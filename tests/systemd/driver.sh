#!/usr/bin/env bash
# driver.sh (CTest systemd_driver): the agent's systemd driver in a booted
# machine. droverd runs in the control namespace (this build's binary); the
# machine "web-1" gets drover-agent from this build's package, enabled under
# its systemd. The service is berry-svc from an oci-layout: image, `driver:
# systemd`, with resource limits. Checks, in order:
#
#   deploy v1: unit drover-hello.service active, the plan's limits and
#     sandbox visible in `systemctl show`, its output in `journalctl -u`;
#   drover logs: the agent reads the unit's journal (--lines, offsets, cap);
#   health gate: v3 (unhealthy) is rolled back, v1 runs again from its unit,
#     the failure reason ends with the journal's last lines;
#   crash: systemd restarts the service (NRestarts), the agent sees it by
#     D-Bus signal and reports it to the coordinator;
#   agent restart: the unit is re-adopted, the service keeps its PID;
#   reboot of the machine: the service is back (its unit is enabled).
#
#   sudo bash tests/systemd/driver.sh   (E2E_BUILD_DIR=build by default)
# Exit 0 passed, 1 failed, 77 skipped (not root, tools missing).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=/dev/null # (the e2e harness; checked on its own)
source "$HERE/../e2e/lib/e2e.sh"
# shellcheck source=/dev/null # (lib/machine.sh, checked on its own)
source "$HERE/lib/machine.sh"

machine_require
e2e_require_tools cpack dpkg-deb umoci jq curl sqlite3
T0=$(e2e_now_ms)
A=/etc/drover/agent
U=drover-hello.service

net_up web-1 || fail "net_up"
WEB=$(addr_of web-1)
PKG=$E2E_RUN/packages
mkdir -p "$PKG"
sd_packages "$PKG" || fail "the packages"
agent_deb=$(echo "$PKG"/drover-agent_*.deb)
[[ -f $agent_deb ]] || fail "cpack made no drover-agent package"
rootfs_ensure "${SD_DROVER_PKGS[@]}" || fail "rootfs"

IMG=$MKIMAGE_CACHE/systemd-images/hello
for v in v1 v2; do mkimage_berry "$IMG" hello $v >/dev/null || fail "image $v"; done
mkimage_berry "$IMG" hello v3 --unhealthy >/dev/null || fail "image v3"
layout_digest() {
	jq -r --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
		"$IMG/index.json"
}

machine_up web-1 --bind-ro="$PKG:/srv/packages" --bind-ro="$IMG:/srv/images/hello"
drover_control_init || fail "droverd init"
drover_control_start || fail "droverd start"
machine_wait web-1 90 || fail "web-1 did not boot"
net_root_guarded || fail "the root namespace can reach the test network"
ok "droverd in the control namespace, machine web-1 ($WEB) booted ($((($(e2e_now_ms) - T0) / 1000)) s)"

diag() {
	[[ ${rc:-0} != 0 && ${rc:-0} != 77 ]] || return 0
	echo "---- journal of web-1 (agent, hello) ----" >&2
	msh web-1 journalctl -u drover-agent -u "$U" --no-pager -q -n 80 >&2 || true
	msh web-1 systemctl status "$U" --no-pager >&2 || true
}
e2e_at_exit diag

msh web-1 env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/srv/packages/$(basename "$agent_deb")" \
	>"$E2E_RUN/logs/agent-install.log" 2>&1 || fail "install drover-agent: $(tail "$E2E_RUN/logs/agent-install.log")"
machine_cp "$DROVERD_DIR/coordinator.pub" web-1 $A/coordinator.pub
machine_cp "$DROVERD_DIR/enroll.token" web-1 $A/enroll.token
msh web-1 drover-agent init --dir $A --coordinator "tcp://$(addr_of control):$DROVER_LINK_PORT" \
	--coordinator-key $A/coordinator.pub --enroll-token-file $A/enroll.token --id web-1 \
	>"$E2E_RUN/logs/agent-init.log" 2>&1 || fail "drover-agent init: $(cat "$E2E_RUN/logs/agent-init.log")"
msh web-1 sed -i -E 's/^( *)reconnect_max:.*/\1reconnect_max: 1s/' $A/agent.yaml
msh web-1 systemctl enable --now drover-agent >/dev/null 2>&1 || fail "systemctl enable --now drover-agent"
drover_wait_agents connected 30 web-1 || fail "web-1 did not connect"
ok "drover-agent (package) enabled in web-1 and connected"

# plan VERSION: hello with driver systemd and limits
plan() {
	local d
	d=$(layout_digest "$1")
	[[ $d == sha256:* ]] || fail "no digest for hello:$1"
	cat <<EOF
deployment: sdriver
version: "$1"
tiers:
  - name: app
    services:
      - name: hello
        image: oci-layout:/srv/images/hello:$1@$d
        hosts: [web-1]
        driver: systemd
        command: [/bin/berry-svc, --name, hello, --port, "8080"]
        env: { GREETING: "50% of \$HOME" }
        stop_grace: 5s
        systemd: { memory_max: 64M, cpu_quota: 50%, tasks_max: 32, kill_mode: mixed }
        health: { http: { port: 8080, path: /health }, interval: 300ms, deadline: 8s, unhealthy_threshold: 2 }
EOF
}
deploy() { # deploy VERSION EXPECTED_STATE
	plan "$1" >"$E2E_RUN/plan-$1.yaml"
	dep_deploy "$E2E_RUN/plan-$1.yaml" "$2" 120
}
hello_version() { msh web-1 curl -fsS --max-time 2 http://127.0.0.1:8080/version 2>/dev/null; }
prop() { msh web-1 systemctl show -P "$1" "$U"; }

deploy v1 succeeded || fail "deployment v1"
[[ $(hello_version) == v1 ]] || fail "hello answers '$(hello_version)', want v1"
[[ $(prop ActiveState) == active ]] || fail "$U is $(prop ActiveState)"
[[ $(msh web-1 systemctl is-enabled "$U") == enabled ]] || fail "$U is not enabled"
ok "deployment v1 with driver systemd: $U active, enabled, answers v1"

[[ $(prop MemoryMax) == $((64 << 20)) ]] || fail "MemoryMax=$(prop MemoryMax)"
[[ $(prop CPUQuotaPerSecUSec) == 500ms ]] || fail "CPUQuotaPerSecUSec=$(prop CPUQuotaPerSecUSec)"
[[ $(prop TasksMax) == 32 ]] || fail "TasksMax=$(prop TasksMax)"
[[ $(prop KillMode) == mixed ]] || fail "KillMode=$(prop KillMode)"
[[ $(prop TimeoutStopUSec) == 5s ]] || fail "TimeoutStopUSec=$(prop TimeoutStopUSec)"
[[ $(prop ProtectSystem) == full ]] || fail "ProtectSystem=$(prop ProtectSystem)"
[[ $(prop PrivateTmp) == yes ]] || fail "PrivateTmp=$(prop PrivateTmp)"
[[ $(prop NoNewPrivileges) == yes ]] || fail "NoNewPrivileges=$(prop NoNewPrivileges)"
[[ $(prop Restart) == on-failure ]] || fail "Restart=$(prop Restart)"
svc_uid=$(msh web-1 ps -o uid= -p "$(prop MainPID)" | tr -d ' ')
[[ $svc_uid == "$(msh web-1 id -u drover-svc)" ]] || fail "hello runs as uid $svc_uid, not drover-svc"
# shellcheck disable=SC2016 # a literal $HOME: the value must arrive unexpanded
msh web-1 sh -c "tr '\0' '\n' </proc/$(prop MainPID)/environ" | grep -cx 'GREETING=50% of $HOME' >/dev/null ||
	fail "the plan's environment did not arrive verbatim"
ok "systemctl show: MemoryMax=64M CPUQuota=50% TasksMax=32 KillMode=mixed TimeoutStop=5s ProtectSystem=full PrivateTmp NoNewPrivileges Restart=on-failure, user drover-svc, env verbatim"
msh web-1 curl -fsS --max-time 2 http://127.0.0.1:8080/health >/dev/null
_journaled() { msh web-1 journalctl -u "$U" --no-pager -q | grep -c 'GET /health' >/dev/null; }
wait_for "berry-svc's requests in the journal" 10 _journaled || fail "journalctl -u $U shows no request"
ok "journalctl -u $U shows the service's output"

# drover logs: for a service of the systemd driver the agent reads the
# journal (sd-journal), with the limits and answer shape of a log file
LOGS=$E2E_RUN/logs-hello
drover_cli logs --host web-1 --lines 3 hello >"$LOGS.tail" 2>"$LOGS.err" || fail "drover logs: $(cat "$LOGS.err")"
[[ $(wc -l <"$LOGS.tail") == 3 ]] || fail "drover logs --lines 3 printed $(wc -l <"$LOGS.tail") lines: $(cat "$LOGS.tail")"
grep -q 'GET /health' "$LOGS.tail" || fail "drover logs: not hello's output: $(cat "$LOGS.tail")"
msh web-1 curl -s --max-time 2 -o /dev/null http://127.0.0.1:8080/marker-one || true
_marked() { msh web-1 journalctl -u "$U" --no-pager -q | grep -q "$1"; }
wait_for "marker-one in the journal" 10 _marked marker-one || fail "marker-one not journaled"
drover_api GET "/v1/services/hello/logs?host=web-1&lines=2000" >"$LOGS.json" || fail "GET logs"
jq -e '.hosts[0].instance == "drover-hello.service" and (.hosts[0].text | test("marker-one"))
	and .hosts[0].offset > 0' "$LOGS.json" >/dev/null || fail "logs json: $(head -c 600 "$LOGS.json")"
off=$(jq -r '.hosts[0].offset' "$LOGS.json")
msh web-1 curl -s --max-time 2 -o /dev/null http://127.0.0.1:8080/marker-two || true
wait_for "marker-two in the journal" 10 _marked marker-two || fail "marker-two not journaled"
drover_api GET "/v1/services/hello/logs?host=web-1&offset=$off" >"$LOGS.next" || fail "GET logs from $off"
jq -e '(.hosts[0].text | test("marker-two")) and (.hosts[0].text | test("marker-one") | not)
	and .hosts[0].offset > '"$off" "$LOGS.next" >/dev/null || fail "logs from offset $off: $(head -c 600 "$LOGS.next")"
# 300 requests of 250-byte paths: about 85 KB of output, over the 64 KiB cap
pad=$(printf 'p%.0s' {1..240})
msh web-1 curl -s --max-time 30 -o /dev/null "http://127.0.0.1:8080/$pad-[100-399]" || true
wait_for "the padded requests in the journal" 10 _marked "$pad-399" || fail "padded requests not journaled"
drover_api GET "/v1/services/hello/logs?host=web-1&lines=10000" >"$LOGS.big" || fail "GET 10000 lines"
jq -e '(.hosts[0].text | length) <= 65536 and (.hosts[0].text | length) > 60000 and .hosts[0].truncated
	and (.hosts[0].text | test("'"$pad"'-399"))' "$LOGS.big" >/dev/null ||
	fail "10000 lines: $(jq -c '.hosts[0] | {truncated, n: (.text | length)}' "$LOGS.big")"
ok "drover logs hello reads $U's journal: --lines 3, the unit as instance, a follower's offset (marker-two only), capped at 64 KiB"

# health gate: v3 never gets healthy and is rolled back to v1
deploy v3 rolled_back || fail "deployment v3 was not rolled back"
v3msg=$(dep_get "$DEP_ID" | jq -r '[.tiers[].services[].hosts[] | select(.state == "failed" or .message != "")][0].message')
[[ $v3msg == *"last output: "*"status=503"* ]] || fail "v3's reason lacks the journal's last output: $v3msg"
[[ $(hello_version) == v1 ]] || fail "after the rollback hello answers '$(hello_version)'"
[[ $(prop ActiveState) == active ]] || fail "after the rollback $U is $(prop ActiveState)"
ok "unhealthy v3 failed its health gate and was rolled back; v1 runs again in $U"

# crash: systemd restarts it; the agent sees it and reports it
n0=$(prop NRestarts)
pid0=$(prop MainPID)
msh web-1 curl -s --max-time 2 http://127.0.0.1:8080/crash >/dev/null || true
_restarted() { [[ $(prop NRestarts) -gt $n0 && $(prop ActiveState) == active && $(prop MainPID) != "$pid0" ]]; }
wait_for "systemd restarting the crashed service" 15 _restarted || fail "no restart by systemd"
# the agent's STEP_STATUS report, as droverd stored it (events, kind report)
_reported() {
	[[ $(sqlite3 "file:$DROVERD_DIR/droverd.db?mode=ro" \
		"SELECT count(*) FROM events WHERE kind = 'report' AND data LIKE '%systemd restarts it%'") -gt 0 ]]
}
_seen() { msh web-1 journalctl -u drover-agent --no-pager -q | grep -c 'unit state changed' >/dev/null; }
wait_for "the agent saw the crash (D-Bus signal)" 10 _seen || fail "the agent did not see the crash"
wait_for "the coordinator got the agent's report" 10 _reported || fail "droverd has no report of the crash"
ok "crash: systemd restarted hello (NRestarts $n0 -> $(prop NRestarts)); the agent saw it by signal and reported it"
wait_for "hello back" 10 hello_version >/dev/null || fail "hello did not come back"

# agent restart: the unit is re-adopted, untouched
pid1=$(prop MainPID)
msh web-1 systemctl restart drover-agent || fail "systemctl restart drover-agent"
_readopted() { msh web-1 journalctl -u drover-agent --no-pager -q | grep -c 're-adopted' >/dev/null; }
wait_for "the agent re-adopting $U" 15 _readopted || fail "no re-adoption after an agent restart"
[[ $(prop MainPID) == "$pid1" ]] || fail "the agent restart restarted the service"
drover_wait_agents connected 30 web-1 || fail "web-1 did not reconnect"
ok "agent restart: $U re-adopted, the service kept PID $pid1"

# a second deployment replaces the release in the same unit
deploy v2 succeeded || fail "deployment v2"
[[ $(hello_version) == v2 ]] || fail "hello answers '$(hello_version)', want v2"
ok "deployment v2 replaced v1 in $U"

# reboot: the enabled unit brings the service back
machine_reboot web-1 90 || fail "web-1 did not come back from the reboot"
wait_for "hello after the reboot" 30 hello_version >/dev/null || fail "hello is not back after the reboot"
[[ $(hello_version) == v2 ]] || fail "after the reboot hello answers '$(hello_version)'"
drover_wait_agents connected 30 web-1 || fail "web-1 did not reconnect after the reboot"
ok "reboot of web-1: $U came back with v2 and the agent reconnected"

# blue-green: each slot is its own unit (drover-bg@blue/green.service);
# traffic is switched by an agent hook that records the target
bgplan() {
	cat <<EOF
deployment: sdriver-bg
version: "$1"
tiers:
  - name: app
    services:
      - name: bg
        image: oci-layout:/srv/images/hello:$1@$(layout_digest "$1")
        hosts: [web-1]
        driver: systemd
        command: [/bin/berry-svc, --name, bg]
        port: 9090
        health: { http: { path: /health }, interval: 300ms, deadline: 8s }
        strategy:
          type: blue-green
          green_port: 9091
          traffic: { hook: { hosts: [web-1], run: [/bin/sh, -c, 'echo "\$DROVER_TARGET" >/run/bg-traffic'] } }
EOF
}
bg_unit() { msh web-1 systemctl is-active "drover-bg@$1.service" 2>/dev/null || true; }
bgplan v1 >"$E2E_RUN/bg-v1.yaml"
dep_deploy "$E2E_RUN/bg-v1.yaml" succeeded 120 || fail "blue-green v1"
first=""
for s in blue green; do [[ $(bg_unit $s) != active ]] || first=$s; done
[[ -n $first ]] || fail "blue-green v1: no slot unit is active"
other=green
[[ $first == blue ]] || other=blue
bgplan v2 >"$E2E_RUN/bg-v2.yaml"
dep_deploy "$E2E_RUN/bg-v2.yaml" succeeded 120 || fail "blue-green v2"
[[ $(bg_unit $other) == active ]] || fail "blue-green v2: drover-bg@$other.service is $(bg_unit $other)"
[[ $(bg_unit "$first") != active ]] || fail "blue-green v2: the old slot drover-bg@$first.service still runs"
msh web-1 test ! -e "/etc/systemd/system/drover-bg@$first.service" || fail "the old slot's unit file is left"
[[ $(msh web-1 cat /run/bg-traffic) == new ]] || fail "the traffic hook did not switch to the new slot"
port=9090
[[ $other == blue ]] || port=9091
[[ $(msh web-1 curl -fsS --max-time 2 "http://127.0.0.1:$port/version") == v2 ]] ||
	fail "the $other slot does not answer v2 on $port"
ok "blue-green with driver systemd: v1 in drover-bg@$first, v2 in drover-bg@$other (port $port), traffic switched, the old slot's unit stopped and removed"

ok "systemd_driver passed in $((($(e2e_now_ms) - T0) / 1000)) s"
