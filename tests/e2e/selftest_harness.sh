#!/usr/bin/env bash
# selftest_harness.sh: the e2e harness checks itself (CTest e2e_harness).
#
# Seven hosts + control in network namespaces; connectivity inside them;
# the root namespace cannot reach the subnet; registry and HAProxy in the
# control namespace; an image pushed and its manifest pulled from a host;
# link cut/heal, iptables drop/undrop, process signals; then a full teardown
# that leaves no namespace, route or process behind.
#
#   sudo bash tests/e2e/selftest_harness.sh     (E2E_BUILD_DIR=build by default)
#
# Exit 0 all passed, 1 a check failed, 77 skipped (not root, no ip netns, a
# tool missing), with the reason printed.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

e2e_require_root
e2e_require_tools curl haproxy docker-registry skopeo umoci iptables flock
BERRY=$(e2e_bin berry-svc) || skip "berry-svc is not built (cmake --build build)"
e2e_bin drv-haproxy-cmd >/dev/null || skip "drv-haproxy-cmd is not built (cmake --build build)"

HOSTS=(core-1 core-2 supporting-1 supporting-2 ui-1 ui-2 db-1)
T0=$(e2e_now_ms)
net_up "${HOSTS[@]}" || fail "net_up"
ok "net_up ${#HOSTS[@]} hosts + control in $(($(e2e_now_ms) - T0)) ms ($E2E_PREFIX, $E2E_SUBNET)"
PREFIX=$E2E_PREFIX
SUBNET=$E2E_SUBNET
STATE=$E2E_STATE
CTL=$(addr_of control)

# --- the guard: the root namespace has no way to the subnet ---
net_root_guarded || fail "root namespace is not guarded"
[[ $(ip -4 route show exact "$SUBNET") == "blackhole $SUBNET"* ]] || fail "no blackhole route"
if ip -4 route get "$(addr_of ui-1)" >/dev/null 2>&1; then
	fail "ip route get $(addr_of ui-1) found a route in the root namespace"
fi
[[ -z $(ip -4 -o addr show to "$SUBNET") ]] || fail "a root namespace interface has an address in $SUBNET"
ok "root namespace: blackhole $SUBNET, no route out, no address in the subnet"

# --- every host reaches control, and hosts reach each other, inside namespaces ---
proc_start svc-control control "$BERRY" --name control --port 8080 --listen-addr "$CTL"
for h in "${HOSTS[@]}"; do
	proc_start "svc-$h" "$h" "$BERRY" --name "$h" --port 8080 --listen-addr "$(addr_of "$h")"
done
wait_for "berry-svc on control" 10 in_ns core-1 curl -fsS --max-time 1 "http://$CTL:8080/health" ||
	fail "control service did not come up"
for h in "${HOSTS[@]}"; do
	got=$(in_ns "$h" curl -fsS --max-time 2 "http://$CTL:8080/name") || fail "$h -> control"
	[[ $got == control ]] || fail "$h -> control answered '$got'"
done
ok "all ${#HOSTS[@]} hosts reach control over the bridge"
for i in "${!HOSTS[@]}"; do
	from=${HOSTS[$i]}
	to=${HOSTS[$(((i + 1) % ${#HOSTS[@]}))]}
	wait_for "$to's service" 10 in_ns "$from" curl -fsS --max-time 1 \
		"http://$(addr_of "$to"):8080/health" || fail "$from -> $to"
	got=$(in_ns "$from" curl -fsS --max-time 2 "http://$(addr_of "$to"):8080/name")
	[[ $got == "$to" ]] || fail "$from -> $to answered '$got'"
done
got=$(in_ns control curl -fsS --max-time 2 "http://$(addr_of db-1):8080/name")
[[ $got == db-1 ]] || fail "control -> db-1 answered '$got'"
ok "host-to-host and control-to-host traffic works (ring of ${#HOSTS[@]})"

# --- registry in the control namespace; one image, pulled from a host ---
registry_up 5000 || fail "registry_up"
[[ $E2E_REGISTRY == "$CTL:5000" ]] || fail "E2E_REGISTRY=$E2E_REGISTRY"
in_ns ui-2 curl -fsS --max-time 5 -o /dev/null "http://$E2E_REGISTRY/v2/" || fail "registry from ui-2"
ok "registry up on $E2E_REGISTRY, reachable from a host"

images_build api-gateway || fail "images_build api-gateway"
images_push api-gateway || fail "images_push api-gateway"
DIGEST=$(image_digest api-gateway v1) || fail "image_digest"
[[ $DIGEST =~ ^sha256:[0-9a-f]{64}$ ]] || fail "bad digest '$DIGEST'"
[[ $(image_ref api-gateway v1) == "$E2E_REGISTRY/berrys/api-gateway@$DIGEST" ]] || fail "image_ref"
in_ns core-2 curl -fsS --max-time 10 -H "Accept: $MKIMAGE_ACCEPT" -o "$E2E_RUN/manifest.json" \
	"http://$E2E_REGISTRY/v2/berrys/api-gateway/manifests/v1" || fail "manifest pull from core-2"
[[ sha256:$(sha256sum <"$E2E_RUN/manifest.json" | cut -d' ' -f1) == "$DIGEST" ]] ||
	fail "manifest pulled from core-2 does not hash to $DIGEST"
in_ns core-2 curl -fsS --max-time 10 -H "Accept: $MKIMAGE_ACCEPT" -o /dev/null \
	"http://$E2E_REGISTRY/v2/berrys/api-gateway/manifests/$DIGEST" || fail "manifest by digest"
ok "api-gateway v1..v3 built and pushed; core-2 pulled the v1 manifest ($DIGEST)"

# --- HAProxy in the control namespace, ui hosts as servers ---
haproxy_reference ui-1 ui-2 || fail "haproxy_reference"
haproxy_up || fail "haproxy_up"
haproxy_wait_up api-gateway 10 ui-1 ui-2 || fail "ui-1 and ui-2 not UP in HAProxy"
for h in ui-1 ui-2; do
	proc_start "blue-$h" "$h" "$BERRY" --name web-blue --port 9080 --listen-addr "$(addr_of "$h")"
done
haproxy_wait_up web-dashboard 10 ui-1-blue ui-2-blue || fail "blue servers not UP"
green_down() { [[ $(haproxy_server_field web-dashboard ui-1-green status) == DOWN ]]; }
wait_for "ui-1-green DOWN (nothing on 9081 yet)" 10 green_down || fail "ui-1-green is not DOWN"
proc_start green-ui-1 ui-1 "$BERRY" --name web-green --port 9081 --listen-addr "$(addr_of ui-1)"
haproxy_wait_up web-dashboard 10 ui-1-green || fail "ui-1-green not UP once its service runs"
ok "haproxy_reference: api-gateway :8000 (ui-1, ui-2), web-dashboard :8001 (blue UP, green UP once started)"
seen=""
for i in 1 2 3 4; do
	seen+=" $(in_ns db-1 curl -fsS --max-time 2 "http://$CTL:8000/name")"
done
[[ $seen == *ui-1* && $seen == *ui-2* ]] || fail "through HAProxy: saw '$seen'"
ok "HAProxy balances api-gateway over ui-1 and ui-2 (saw$seen)"
haproxy_cmd "set server api-gateway/ui-1 weight 0" >/dev/null || fail "set weight"
[[ $(haproxy_server_field api-gateway ui-1 weight) == 0 ]] || fail "weight of ui-1 not 0"
for i in 1 2 3 4; do
	got=$(in_ns db-1 curl -fsS --max-time 2 "http://$CTL:8000/name")
	[[ $got == ui-2 ]] || fail "weight 0 on ui-1, yet request $i went to '$got'"
done
haproxy_cmd "set server api-gateway/ui-1 weight 100" >/dev/null || fail "reset weight"
ok "runtime API moves traffic (ui-1 weight 0 -> all to ui-2)"

# --- link cut / heal ---
link_cut core-1 || fail "link_cut"
link_is_cut core-1 || fail "link_is_cut after link_cut"
if in_ns core-1 curl -fsS --max-time 2 -o /dev/null "http://$CTL:8080/health" 2>/dev/null; then
	fail "core-1 reached control through a cut link"
fi
if in_ns control curl -fsS --max-time 2 -o /dev/null "http://$(addr_of core-1):8080/health" 2>/dev/null; then
	fail "control reached core-1 through a cut link"
fi
in_ns core-2 curl -fsS --max-time 2 -o /dev/null "http://$CTL:8080/health" || fail "core-2 lost control too"
ok "link_cut core-1: core-1 and control cannot talk; core-2 unaffected"
link_heal core-1 || fail "link_heal"
! link_is_cut core-1 || fail "link_is_cut after link_heal"
wait_for "core-1 -> control after heal" 10 in_ns core-1 curl -fsS --max-time 1 -o /dev/null \
	"http://$CTL:8080/health" || fail "core-1 did not come back"
ok "link_heal core-1: traffic flows again"

# --- iptables drop / undrop ---
drop_on supporting-1 || fail "drop_on"
if in_ns supporting-1 curl -fsS --max-time 2 -o /dev/null "http://$CTL:8080/health" 2>/dev/null; then
	fail "supporting-1 reached control through DROP"
fi
undrop supporting-1 || fail "undrop"
wait_for "supporting-1 after undrop" 10 in_ns supporting-1 curl -fsS --max-time 1 -o /dev/null \
	"http://$CTL:8080/health" || fail "supporting-1 still cut off"
drop_on supporting-2 control || fail "drop_on peer"
if in_ns supporting-2 curl -fsS --max-time 2 -o /dev/null "http://$CTL:8080/health" 2>/dev/null; then
	fail "supporting-2 reached control through a peer DROP"
fi
in_ns supporting-2 curl -fsS --max-time 2 -o /dev/null "http://$(addr_of db-1):8080/health" ||
	fail "peer DROP on supporting-2 also cut db-1"
undrop supporting-2
ok "drop_on/undrop: all traffic, and traffic to one peer only"

# --- process helpers ---
pid=$(proc_pid svc-db-1)
[[ $(ip netns identify "$pid") == "$(ns_of db-1)" ]] || fail "svc-db-1 runs outside db-1's namespace"
proc_signal svc-db-1 STOP || fail "SIGSTOP"
if in_ns core-1 curl -fsS --max-time 1 -o /dev/null "http://$(addr_of db-1):8080/health" 2>/dev/null; then
	fail "a stopped service answered"
fi
proc_alive svc-db-1 || fail "a stopped process counts as alive"
proc_signal svc-db-1 CONT || fail "SIGCONT"
wait_for "db-1 after SIGCONT" 5 in_ns core-1 curl -fsS --max-time 1 -o /dev/null \
	"http://$(addr_of db-1):8080/health" || fail "db-1 service did not resume"
proc_signal svc-db-1 KILL || fail "SIGKILL"
proc_wait_gone svc-db-1 5 || fail "svc-db-1 still there after SIGKILL"
[[ $PROC_STATUS == 137 ]] || fail "exit status after SIGKILL: '$PROC_STATUS'"
! proc_signal svc-db-1 TERM 2>/dev/null || fail "proc_signal on a gone process succeeded"
proc_start svc-db-1 db-1 "$BERRY" --name db-1 --port 8080 --listen-addr "$(addr_of db-1)" ||
	fail "restart under the same name"
[[ $(proc_pid svc-db-1) != "$pid" ]] || fail "restart kept the old PID"
wait_for "db-1 restarted" 5 in_ns core-1 curl -fsS --max-time 1 -o /dev/null \
	"http://$(addr_of db-1):8080/health" || fail "restarted service not up"
ok "proc_start/proc_signal STOP, CONT, KILL/proc_wait_gone (status 137)/restart"

# --- teardown leaves nothing behind ---
PIDS=()
for f in "$E2E_RUN"/procs/*; do PIDS+=("$(cut -d' ' -f1 "$f")"); done
SOCKDIR=$E2E_SOCK
RUNDIR=$E2E_RUN
T0=$(e2e_now_ms)
net_down
ok "net_down in $(($(e2e_now_ms) - T0)) ms"
if ip netns list | awk '{print $1}' | grep -q "^$PREFIX-"; then
	fail "namespaces left: $(ip netns list | grep "^$PREFIX-" | tr '\n' ' ')"
fi
[[ -z $(ip -4 route show table all root "$SUBNET") ]] || fail "routes left: $(ip route show table all root "$SUBNET")"
for pid in "${PIDS[@]}"; do
	if [[ -d /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
		fail "process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline")) still running"
	fi
done
[[ ! -e $STATE && ! -e $SOCKDIR && ! -e $RUNDIR ]] || fail "state, sockets or run dir left"
ok "nothing left: no $PREFIX-* namespace (bridge and veths went with them), no route, ${#PIDS[@]} processes gone, no state"
echo "selftest_harness: $E2E_PASSED passed, 0 failed"
