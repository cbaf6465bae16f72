#!/usr/bin/env bash
# agent_container.sh: the container driver against real Podman serving the
# Docker Engine API on a unix socket. Podman runs with a private root,
# runroot and config under the test's temp dir (runc, cgroupfs, file events,
# ulimits: what works without systemd here), so nothing depends on the machine's own podman
# state. Covers: pull by digest + start with env, files and health gate;
# re-adoption by a new agent; replacement by a new version; rollback with the
# registry stopped (image from the engine's store); stop removes the
# container. Skips (77) loudly when Podman cannot run containers here.
TEST_NAME=agent_container
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
need_tools podman runc
[[ -x /usr/libexec/podman/catatonit ]] || skip "catatonit is missing (podman --init needs it; make deps)"
setup_registry

push_berry D1 1.0.0
push_berry D2 2.0.0
push_berry D3 3.0.0

PM=$TMP/pm
mkdir -p "$PM/root" "$PM/runroot" "$PM/tmp"
cat >"$PM/containers.conf" <<EOC
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOC
cat >"$PM/registries.conf" <<EOC
unqualified-search-registries = []
[[registry]]
location = "$REG"
insecure = true
EOC
export CONTAINERS_CONF=$PM/containers.conf CONTAINERS_REGISTRIES_CONF=$PM/registries.conf
PODMAN=(podman --root "$PM/root" --runroot "$PM/runroot" --storage-driver vfs --tmpdir "$PM/tmp"
	--cgroup-manager cgroupfs --events-backend file --runtime runc)
SOCK=$PM/podman.sock
"${PODMAN[@]}" system service --time=0 "unix://$SOCK" >"$PM/service.log" 2>&1 &
ppid=$!
at_exit "kill $ppid; wait $ppid"
wait_for 20 curl -fsS --unix-socket "$SOCK" http://d/_ping || skip "podman system service did not answer: $(tail -3 "$PM/service.log")"

# Can this machine run a container at all?
rc=0
"${PODMAN[@]}" run --rm --network host --init -e BERRY_CRASH_AFTER_MS=50 "$REG/berrys/berry@$D3" \
	--name probe --port "$(pick_port)" --listen-addr 127.0.0.1 >"$PM/probe.log" 2>&1 || rc=$?
[[ $rc == 3 ]] || skip "podman cannot run containers here (exit $rc): $(tail -3 "$PM/probe.log")"
ok "podman $(podman --version | cut -d' ' -f3) serves the Docker API on $SOCK and runs containers"

P=$(pick_port)
URL=http://127.0.0.1:$P
ct() { jq -c --argjson x "$1" '.service += {driver:"container"} + $x'; }
A=(--docker-socket "$SOCK")
simple_json cleanup-c stop berry >"$TMP/cleanup-c.json"
at_exit "\"$AGENT\" run-step '$TMP/cleanup-c.json' --dir '$AGENT_DIR' --docker-socket '$SOCK'"

extra='{"env":{"BERRY_ERROR_RATE":"0.5"},"files":{"/etc/berrys/flags.json":"{\"x\":1}"}}'
run_step c1 "$(svc_json c1 start berry 1.0.0 "$D1" "$P" | ct "$extra")" "${A[@]}" || fail "start: $(final c1)"
[[ $(http_body "$URL/version") == 1.0.0 && $(http_body "$URL/error_rate") == 0.5 ]] || fail "container not serving"
[[ $(rel c1 .state) == running && $(rel c1 .healthy) == true ]] || fail "c1: $(final c1)"
curl -fsS --unix-socket "$SOCK" http://d/v1.41/containers/drover-berry/json >"$TMP/inspect.json"
[[ $(jq -r '.Config.Labels["drover.service"]' "$TMP/inspect.json") == berry ]] || fail "labels missing"
jq -e '[.Mounts[] | select(.Destination == "/etc/berrys/flags.json")] | length == 1' "$TMP/inspect.json" >/dev/null ||
	fail "files not bind-mounted: $(jq -c .Mounts "$TMP/inspect.json")"
cpid=$(jq -r .State.Pid "$TMP/inspect.json")
jq -e '.HostConfig.CapDrop == ["ALL"] or .HostConfig.CapDrop == ["all"] or (.HostConfig.CapDrop | length) > 10' \
	"$TMP/inspect.json" >/dev/null || fail "capabilities not dropped: $(jq -c .HostConfig.CapDrop "$TMP/inspect.json")"
[[ $(awk '$1 == "CapEff:" { print $2 }' "/proc/$cpid/status") == 0000000000000000 &&
	$(awk '$1 == "NoNewPrivs:" { print $2 }' "/proc/$cpid/status") == 1 ]] ||
	fail "container process $cpid: $(grep -E '^(CapEff|NoNewPrivs)' "/proc/$cpid/status" | tr '\n' ' ')"
ok "container started from $REG by digest: env, labels, files bind-mounted, healthy, no capabilities, no_new_privs"

"$AGENT" run-step --status --dir "$AGENT_DIR" "${A[@]}" >"$TMP/st.out" 2>/dev/null || fail "status"
has "$TMP/st.out" '.result == "releases" and .releases[0].state == "running"' || fail "status: $(cat "$TMP/st.out")"
ok "a new agent finds the container running (the engine kept it)"

run_step c2 "$(svc_json c2 start berry 2.0.0 "$D2" "$P" | ct '{"user":"1234","group":"1234","capabilities":["CAP_NET_BIND_SERVICE"]}')" "${A[@]}" || fail "2.0.0: $(final c2)"
[[ $(http_body "$URL/version") == 2.0.0 && $(rel c2 .previous_version) == 1.0.0 ]] || fail "c2: $(final c2)"
curl -fsS --unix-socket "$SOCK" http://d/v1.41/containers/drover-berry/json >"$TMP/inspect2.json"
[[ $(jq -r .Config.User "$TMP/inspect2.json") == 1234:1234 ]] || fail "User: $(jq -r .Config.User "$TMP/inspect2.json")"
cpid=$(jq -r .State.Pid "$TMP/inspect2.json")
[[ $(ps -o user= -p "$cpid") == 1234 && $(awk '$1 == "CapEff:" { print $2 }' "/proc/$cpid/status") == 0000000000000400 ]] ||
	fail "container as 1234 with CAP_NET_BIND_SERVICE: $(ps -o user= -p "$cpid") $(grep CapEff "/proc/$cpid/status")"
ok "2.0.0 replaced 1.0.0, as user 1234:1234 with only CAP_NET_BIND_SERVICE (User, CapDrop ALL, CapAdd)"

image_code() { # DIGEST: HTTP status of the engine's image lookup
	local esc
	esc=$(jq -rn --arg s "$REG/berrys/berry@$1" '$s | @uri')
	curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "http://d/v1.41/images/$esc/json"
}
run_step c3 "$(svc_json c3 start berry 3.0.0 "$D3" "$P" | ct '{}')" "${A[@]}" || fail "3.0.0: $(final c3)"
[[ $(image_code "$D1") == 404 && $(image_code "$D2") == 200 && $(image_code "$D3") == 200 ]] ||
	fail "image GC: 1.0.0 $(image_code "$D1"), 2.0.0 $(image_code "$D2"), 3.0.0 $(image_code "$D3")"
ok "3.0.0 replaced 2.0.0; GC removed the 1.0.0 image from the engine, kept 2.0.0 and 3.0.0"

registry_stop "$REG_DIR"
run_step r1 "$(simple_json r1 activate_previous berry)" "${A[@]}" || fail "rollback: $(final r1)"
[[ $(http_body "$URL/version") == 2.0.0 ]] || fail "2.0.0 not back"
ok "rollback to 2.0.0 with the registry stopped (image from the engine's store)"

run_step x1 "$(simple_json x1 stop berry)" "${A[@]}" || fail "stop"
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://d/v1.41/containers/drover-berry/json)
[[ $code == 404 && -z $(http_body "$URL/version") && $(rel x1 .state) == stopped ]] || fail "stop: $code $(final x1)"
ok "stop stops and removes the container"

echo "$TEST_NAME: $PASSED passed, 0 failed"
