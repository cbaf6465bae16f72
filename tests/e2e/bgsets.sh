#!/usr/bin/env bash
# bgsets.sh (CTest e2e_bgsets): blue-green across host sets with real
# agents in namespaces and real HAProxy. web-dashboard runs on two sets,
# seta-1 seta-2 (label color: a) and setb-1 setb-2 (color: b); HAProxy's
# backend web-sets (control:8002) lists all four servers.
#
#   release 1  no set is live yet: set a goes first (and the status says
#              so); HAProxy weights a=100 b=0; a request through HAProxy
#              is answered by set a
#   restart    droverd is restarted: the live set comes from the store
#              (`drover deploy --dry-run` of release 2 already says set b)
#   release 2  goes to set b; after the switch traffic is on b while set a
#              still runs release 1 (finalize_after 10m); drover promote
#              ends the wait and set a is stopped;
#              `drover status` shows "live b"
#   release 3  goes to set a; after the switch a host of set a turns
#              unhealthy: rolled back, traffic back on set b (weights and a
#              real request), set b untouched (same processes, no step
#              sent to it), set a stopped again
#   release 4  goes to set a again (b is still live after the rollback)
#
#   sudo bash tests/e2e/bgsets.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

ref_require
SET_A=(seta-1 seta-2)
SET_B=(setb-1 setb-2)
HOSTS=("${SET_A[@]}" "${SET_B[@]}")
FRONT=8002

net_up "${HOSTS[@]}" || fail "net_up"
registry_up || fail "registry_up"
images_build web-dashboard || fail "images_build"
images_push web-dashboard || fail "images_push"
servers=()
for h in "${HOSTS[@]}"; do servers+=("$h=$(addr_of "$h"):9080"); done
haproxy_backend web-sets "$FRONT" "${servers[@]}" || fail "haproxy_backend"
haproxy_up || fail "haproxy_up"
drover_control_init || fail "droverd init"
drover_control_start || fail "droverd start"
drover_agents_up "${HOSTS[@]}" || fail "agents did not all connect"
ok "droverd, registry, HAProxy and ${#HOSTS[@]} agents up"

# ---- helpers ----

render() { # OUT VERSION IMAGE FINALIZE
	plan_render bgsets.yaml "$1" "VERSION=$2" "IMAGE=$3" "FINALIZE=$4" || fail "plan $1"
}

# sets ID FIELD: the web-dashboard service's sets.FIELD in the deployment
sets() {
	dep_get "$1" | jq -r --arg f "$2" \
		'[.tiers[].services[] | select(.name == "web-dashboard") | .sets[$f]][0] | tostring'
}

weight() { haproxy_server_field web-sets "$1" weight; }

# weights_are SET: the set's servers carry weight 100, the others 0
weights_are() {
	local h want
	for h in "${HOSTS[@]}"; do
		want=0
		[[ $h == set$1-* ]] && want=100
		[[ $(weight "$h") == "$want" ]] || {
			echo "$h has weight $(weight "$h"), want $want"
			return 1
		}
	done
}

# through_haproxy: "VERSION SERVER" of one request to the frontend
through_haproxy() {
	local hdr body
	hdr=$(mktemp "$E2E_RUN/hdr.XXXXXX")
	body=$(in_ns control curl -s --max-time 3 -D "$hdr" "http://$(addr_of control):$FRONT/version") || true
	echo "$body $(tr -d '\r' <"$hdr" | awk -F': ' 'tolower($1) == "x-drover-server" { print $2 }')"
	rm -f "$hdr"
}

# served_by SET VERSION: a few requests through HAProxy, all answered by
# SET's servers with VERSION
served_by() {
	local i got
	for i in 1 2 3 4; do
		got=$(through_haproxy)
		[[ $got == "$2 set$1-"* ]] || {
			echo "request $i answered \"$got\", want \"$2\" from set $1"
			return 1
		}
	done
}

# set_answers SET VERSION: every host of SET answers VERSION on 9080 ("" : none)
set_answers() {
	local h got
	local -n hosts=SET_${1^^}
	for h in "${hosts[@]}"; do
		got=$(host_version "$h" 9080)
		[[ $got == "$2" ]] || {
			echo "$h answers \"$got\" on 9080, want \"$2\""
			return 1
		}
	done
}

# listener_pid HOST: the PID listening on 9080 in HOST's namespace
listener_pid() {
	in_ns "$1" ss -Htlnp 'sport = :9080' | grep -o 'pid=[0-9]*' | head -n 1
}

# steps_to ID HOST: how many events of the deployment name HOST
steps_to() {
	dep_events "$1" | jq -s --arg h "$2" '[.[] | select(.agent_id == $h or .data.host == $h)] | length'
}

# ---- release 1: the first, to set a ----

render "$E2E_RUN/r1.yaml" 1 v1 2s
dep_deploy "$E2E_RUN/r1.yaml" succeeded 120 || fail "release 1"
R1=$DEP_ID
[[ $(sets "$R1" new) == a && $(sets "$R1" first) == true ]] ||
	fail "release 1 went to set $(sets "$R1" new) (first: $(sets "$R1" first)), want a first"
dep_events "$R1" >"$E2E_RUN/r1.events" || fail "release 1: events"
grep -q "no set is live yet: set a goes first" "$E2E_RUN/r1.events" ||
	fail "release 1: no event says set a goes first"
wait_for "weights on set a" 10 weights_are a || fail "release 1: weights"
wait_for "set a serves release 1 through HAProxy" 15 served_by a 1 || fail "release 1: traffic"
ok "release 1: no set was live, set a went first; HAProxy a=100 b=0, requests answered by set a"

# ---- droverd restarts: the live set is in the store ----

proc_stop droverd
drover_control_start || fail "droverd restart"
drover_wait_agents connected 30 "${HOSTS[@]}" || fail "agents did not reconnect"
ok "droverd restarted"

# ---- release 2: to set b; set a kept until finalize_after, then stopped ----

render "$E2E_RUN/r2.yaml" 2 v2 10m
rc=0
drover_cli deploy --dry-run "$E2E_RUN/r2.yaml" >"$E2E_RUN/r2.dry" 2>&1 || rc=$?
[[ $rc == 1 ]] || { # 1: something would change
	cat "$E2E_RUN/r2.dry" >&2
	fail "release 2 dry run: exit $rc"
}
for want in "start the new release on set b (port 9080): setb-1, setb-2" \
	"switch traffic from set a to set b" "stop set a: seta-1, seta-2"; do
	grep -qF "$want" "$E2E_RUN/r2.dry" || {
		cat "$E2E_RUN/r2.dry" >&2
		fail "release 2 dry run does not say: $want"
	}
done
ok "release 2 dry run: set b from the store's live set a, the switch and set a's decommission"
R2=$(dep_submit "$E2E_RUN/r2.yaml") || fail "release 2 submit"
_switched() { [[ $(sets "$1" live) == "$2" ]]; }
wait_for "release 2 switched to set b" 90 _switched "$R2" b || fail "release 2: no switch"
[[ $(sets "$R2" new) == b && $(sets "$R2" first) == false ]] || fail "release 2 went to $(sets "$R2" new)"
wait_for "weights on set b" 10 weights_are b || fail "release 2: weights"
served_by b 2 || fail "release 2: traffic"
[[ $(dep_state "$R2") != succeeded ]] || fail "release 2 ended before finalize_after"
set_answers a 1 || fail "release 2: set a was stopped before finalize_after"
ok "release 2: switched to set b (HAProxy a=0 b=100, requests answered by b); set a still runs release 1"
# finalize_after is 10 minutes: drover promote cuts it short (no race with the checks above)
drover_cli promote "$R2" >/dev/null || fail "release 2: drover promote"
[[ $(dep_wait_final "$R2" 90) == succeeded ]] || fail "release 2 ended $(dep_state "$R2")"
wait_for "set a stopped" 10 set_answers a "" || fail "release 2: set a still answers after finalize"
set_answers b 2 || fail "release 2: set b"
dep_events "$R2" >"$E2E_RUN/r2.events" || fail "release 2: events"
for h in "${SET_A[@]}"; do
	jq -se --arg h "$h" 'map(select(.kind == "host" and .data.host == $h)) | last | .data.state == "stopped"' \
		"$E2E_RUN/r2.events" >/dev/null || fail "release 2: no host event says $h stopped"
done
drover_cli status "$R2" >"$E2E_RUN/r2.status" || fail "drover status"
grep -q 'set b, live b' "$E2E_RUN/r2.status" || {
	cat "$E2E_RUN/r2.status" >&2
	fail "drover status does not show the live set"
}
ok "release 2: set a decommissioned (promote ended finalize_after); drover status shows set b live"

# ---- release 3: to set a, unhealthy after the switch: back to set b ----

render "$E2E_RUN/r3.yaml" 3 v1 10m
pids_b=$(for h in "${SET_B[@]}"; do listener_pid "$h"; done | tr '\n' ' ')
[[ $pids_b == *pid=*pid=* ]] || fail "set b: no listeners ($pids_b)"
R3=$(dep_submit "$E2E_RUN/r3.yaml") || fail "release 3 submit"
wait_for "release 3 switched to set a" 90 _switched "$R3" a || fail "release 3: no switch"
wait_for "weights on set a" 10 weights_are a || fail "release 3: weights"
served_by a 3 || fail "release 3: traffic"
in_ns seta-1 curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:9080/fail" || fail "seta-1 /fail"
[[ $(dep_wait_final "$R3" 90) == rolled_back ]] || fail "release 3 ended $(dep_state "$R3")"
wait_for "weights back on set b" 10 weights_are b || fail "release 3: weights not back"
served_by b 2 || fail "release 3: traffic not back on set b"
[[ $(for h in "${SET_B[@]}"; do listener_pid "$h"; done | tr '\n' ' ') == "$pids_b" ]] ||
	fail "release 3: set b's processes changed"
[[ $(steps_to "$R3" seta-1) -gt 0 ]] || fail "release 3: no event names seta-1 (the check below would prove nothing)"
for h in "${SET_B[@]}"; do
	[[ $(steps_to "$R3" "$h") == 0 ]] || fail "release 3 sent steps to $h of the old set"
done
wait_for "set a stopped again" 10 set_answers a "" || fail "release 3: set a still answers"
[[ $(sets "$R3" live) == b ]] || fail "release 3: live set $(sets "$R3" live), want b"
ok "release 3: unhealthy after the switch, rolled back: HAProxy back on set b, set b untouched, set a stopped"

# ---- release 4: set b is still live, so set a again ----

render "$E2E_RUN/r4.yaml" 4 v2 2s
dep_deploy "$E2E_RUN/r4.yaml" succeeded 120 || fail "release 4"
[[ $(sets "$DEP_ID" new) == a ]] || fail "release 4 went to set $(sets "$DEP_ID" new), want a"
wait_for "set a serves release 4" 15 served_by a 4 || fail "release 4: traffic"
wait_for "set b stopped" 15 set_answers b "" || fail "release 4: set b still answers"
ok "release 4: went to set a (b was live), set b decommissioned"
