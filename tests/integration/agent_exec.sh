#!/usr/bin/env bash
# agent_exec.sh: the exec driver through the real drover-agent: start (files,
# env, chroot), stop (SIGTERM, then SIGKILL after the grace), crash-loop
# throttling, re-adoption after an agent restart (and restart of a service
# that died while no agent ran), log rotation, and kill -9 of the agent in
# the middle of a switch: the next agent reports what really runs. Privileges:
# services run as drover-svc (or the plan's user) with no capabilities but
# those listed, no_new_privs and no supplementary groups; releases are 0750,
# files 0640; '..' and chroot as root are refused; an absolute symlink in the
# image does not reach the host; setuid bits are stripped unless keep_setid.
TEST_NAME=agent_exec
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
setup_berry

files='{"files":{"/etc/berrys/flags.json":"{\"new_planner\": true}"},"env":{"BERRY_ERROR_RATE":"0.25"}}'
run_step s1 "$(svc_json s1 start berry 1.0.0 "$D1" "$PORT" "$files")" --insecure-registry ||
	fail "start 1.0.0: $(final s1)"
[[ $(http_body "$URL/version") == 1.0.0 && $(http_body "$URL/error_rate") == 0.25 ]] ||
	fail "1.0.0 not serving with its env"
root=$AGENT_DIR/releases/berry/${D1#sha256:}/rootfs
[[ $(cat "$root/etc/berrys/flags.json") == '{"new_planner": true}' ]] || fail "files not written into the release"
[[ $(rel s1 .state) == running && $(rel s1 .healthy) == true ]] || fail "s1 release: $(final s1)"
pid1=$(svc_pid)
[[ $(readlink "/proc/$pid1/cwd") == "$root" ]] || fail "cwd is not the release root"
ok "start: release root cwd, env and files from the instruction, healthy (pid $pid1)"

# status_field PID NAME: a field of /proc/PID/status ("CapEff", "NoNewPrivs", ...).
status_field() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status"; }
user=$(ps -o user= -p "$pid1")
[[ $user == drover-svc ]] || fail "service runs as '$user', not drover-svc"
[[ $(status_field "$pid1" NoNewPrivs) == 1 ]] || fail "no_new_privs not set"
for c in CapEff CapPrm CapInh CapAmb CapBnd; do
	[[ $(status_field "$pid1" $c) == 0000000000000000 ]] || fail "$c is $(status_field "$pid1" $c), want none"
done
[[ -z $(status_field "$pid1" Groups) ]] || fail "supplementary groups kept: $(status_field "$pid1" Groups)"
ok "the service runs as drover-svc: no capabilities (bounding set too), no_new_privs, no supplementary groups"

reldir=${root%/rootfs}
[[ $(stat -c '%a %U %G' "$reldir") == "750 root drover-svc" ]] ||
	fail "release dir is $(stat -c '%a %U %G' "$reldir"), want 750 root drover-svc"
[[ $(stat -c '%a %U %G' "$root/etc/berrys/flags.json") == "640 drover-svc drover-svc" ]] ||
	fail "plan file is $(stat -c '%a %U %G' "$root/etc/berrys/flags.json"), want 640 drover-svc"
[[ $(stat -c '%a' "$(dirname "$reldir")") == 711 ]] || fail "service dir is listable by others"
ok "release 0750 root:drover-svc, plan files 0640 owned by the service"

# Re-adoption: a new agent process finds the running service by pid file + start time.
"$AGENT" run-step --status --dir "$AGENT_DIR" >"$TMP/st1.out" 2>"$TMP/st1.err" || fail "status"
grep -q "re-adopted a running service" "$TMP/st1.err" || fail "no re-adoption logged"
has "$TMP/st1.out" '.result == "releases" and .releases[0].state == "running" and .releases[0].version == "1.0.0"' ||
	fail "status after restart: $(cat "$TMP/st1.out")"
[[ $(svc_pid) == "$pid1" ]] || fail "service restarted instead of re-adopted"
ok "a restarted agent re-adopts the running service (same pid)"

# The service dies while no agent runs: the next agent tells the truth and starts it again.
kill -KILL "$pid1"
wait_for 5 bash -c "! kill -0 $pid1" || fail "service did not die"
"$AGENT" run-step --status --dir "$AGENT_DIR" --watch 1500 >"$TMP/st2.out" 2>"$TMP/st2.err" || fail "status 2"
has "$TMP/st2.out" '.result == "status" and (.message | test("was not running"))' ||
	fail "no report that the service was not running: $(cat "$TMP/st2.out")"
pid2=$(svc_pid)
[[ -n $pid2 && $pid2 != "$pid1" ]] && kill -0 "$pid2" || fail "service not started again"
wait_for 5 test "$(http_body "$URL/version")" = 1.0.0 || fail "service not serving after restart"
ok "a service that died while the agent was down is reported and started again"

# Stop: SIGTERM first (berry-svc exits 0 on it).
run_step x1 "$(simple_json x1 stop berry)" || fail "stop"
wait_for 5 bash -c "! kill -0 $pid2" || fail "still running after stop"
[[ $(rel x1 .state) == stopped && -z $(http_body "$URL/version") ]] || fail "stop: $(final x1)"
grep -q "GET /version" "$AGENT_DIR/log/services/berry.log" || fail "service log missing"
ok "stop: the process is gone, state stopped, stdout was in log/services/berry.log"

# A process that does not act on SIGTERM (stopped) is killed after the grace period.
trap_cmd='{"stop_grace_ms":700}'
run_step s2 "$(svc_json s2 start berry 1.0.0 "$D1" "$PORT" "$trap_cmd")" --insecure-registry || fail "restart"
p=$(svc_pid)
kill -STOP "$p" # a stopped process cannot act on SIGTERM
t0=$(date +%s%N)
run_step x2 "$(simple_json x2 stop berry)" || fail "stop 2"
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q "ignored SIGTERM, sending SIGKILL" "$TMP/x2.err" || fail "no SIGKILL after the grace"
wait_for 5 gone "$p" || fail "process survived SIGKILL"
ok "stop escalates to SIGKILL after the grace period ($ms ms)"

# Chroot isolation: the service sees the release root as /.
run_step s3 "$(svc_json s3 start berry 1.0.0 "$D1" "$PORT" '{"isolation":"chroot"}')" --insecure-registry ||
	fail "chroot start: $(final s3)"
[[ $(readlink "/proc/$(svc_pid)/root") == "$root" ]] || fail "not chrooted"
[[ $(http_body "$URL/version") == 1.0.0 ]] || fail "chrooted service not serving"
ok "isolation: chroot runs the service with the release as its root"

# Crash loop: a version that exits 3 at once fails its START at its first
# exit (the health gate vouches only for the process it started); the
# supervisor goes on restarting it, throttled, until a rollback.
run_step s4 "$(svc_json s4 start berry 2.0.0 "$D2" "$PORT" '{"env":{"BERRY_CRASH_AFTER_MS":"100"}}')" \
	--insecure-registry && fail "crashing version started successfully"
[[ $(field s4 .message) == *"exited during its health gate (exit status 3)"* ]] ||
	fail "the exit did not fail the START: $(final s4)"
"$AGENT" run-step --status --dir "$AGENT_DIR" --watch 6000 >"$TMP/s4w.out" 2>"$TMP/s4w.err" || fail "status s4"
has "$TMP/s4w.out" '.result == "status" and (.message | test("crash loop"))' || fail "no crash-loop report"
n=$(grep -c "service exited" "$TMP/s4w.err")
((n >= 3 && n <= 6)) || fail "$n restarts: not throttled"
grep -q "restart_in_ms=2000" "$TMP/s4w.err" || fail "no growing back-off"
ok "crash loop: the START failed at the first exit; then $n quick exits with growing back-off, reported"

# Roll back to 1.0.0 (the previous release) and check it serves again.
run_step r1 "$(simple_json r1 activate_previous berry)" || fail "rollback: $(final r1)"
[[ $(http_body "$URL/version") == 1.0.0 && $(rel r1 .previous_version) == 2.0.0 ]] || fail "rollback: $(final r1)"
ok "activate_previous after the crash loop: 1.0.0 serves again"

# Log rotation: a small cap, requests until three rotations happened. The
# watcher (an agent supervising the service, rotating at its 1 s tick) runs
# until it is stopped below: a fixed 4 s watch was a bet on how many
# requests a loaded machine gets through in it (2 of 6 runs at load 20 saw
# one rotation only).
run_step s5 "$(svc_json s5 start berry 2.0.0 "$D2" "$PORT")" --insecure-registry --log-max-bytes 2000 \
	--log-keep 2 --watch 100 || fail "start 2.0.0: $(final s5)"
"$AGENT" run-step --status --dir "$AGENT_DIR" --log-max-bytes 2000 --log-keep 2 --watch 300000 >/dev/null 2>&1 &
wpid=$!
at_exit "kill $wpid"
log=$AGENT_DIR/log/services/berry.log
# About 60 bytes a request: 50 are a rotation's worth. The third rotation
# moves berry.log.1 (another file) onto berry.log.2.
rounds=0 first2= ino=
while ((rounds < 60)); do
	for ((j = 0; j < 50; j++)); do http_body "$URL/version" >/dev/null; done
	rounds=$((rounds + 1))
	sleep 1.2
	[[ -f $log.2 ]] || continue
	ino=$(stat -c %i "$log.2")
	[[ -n $first2 ]] || first2=$ino
	[[ $ino == "$first2" ]] || break
done
kill "$wpid" 2>/dev/null || true
wait "$wpid" 2>/dev/null || true
[[ -f $log.1 && $(stat -c %s "$log.1") -ge 2000 ]] || fail "log not rotated in $rounds rounds"
[[ -f $log.2 ]] || fail "log rotated only once in $rounds rounds (no berry.log.2)"
[[ $ino != "$first2" ]] || fail "log rotated only twice in $rounds rounds"
[[ ! -e $log.3 ]] || fail "--log-keep 2 kept berry.log.3"
((i = $(stat -c %s "$log"), i < 20000)) || fail "log not truncated ($i bytes)"
ok "service log rotated 3 times at the size cap ($rounds rounds of requests), 2 kept (berry.log.1 and .2, no .3), berry.log restarted"

# kill -9 of the agent in the middle of a switch: the new version starts slowly,
# the agent dies during the health gate; the next agent must not claim success.
json=$(svc_json s6 start berry 1.0.0 "$D1" "$PORT" '{"env":{"BERRY_START_DELAY_MS":"3000"}}')
printf '%s\n' "$json" >"$TMP/s6.json"
"$AGENT" run-step "$TMP/s6.json" --dir "$AGENT_DIR" --insecure-registry >"$TMP/s6.out" 2>"$TMP/s6.err" &
apid=$!
at_exit "kill -9 $apid"
wait_for 10 grep -q "service started" "$TMP/s6.err" || fail "switch never started the new version"
kill -9 "$apid"
wait "$apid" 2>/dev/null || true
! has "$TMP/s6.out" '.result == "succeeded"' || fail "the killed agent reported success"
"$AGENT" run-step --status --dir "$AGENT_DIR" >"$TMP/after.out" 2>"$TMP/after.err" || fail "status after kill"
has "$TMP/after.out" '.step_id == "s6" and .result == "failed" and (.message | test("interrupted"))' ||
	fail "interrupted switch not reported failed: $(cat "$TMP/after.out")"
has "$TMP/after.out" '.result == "releases" and .releases[0].version == "1.0.0" and .releases[0].state == "running"' ||
	fail "releases after kill -9: $(cat "$TMP/after.out")"
run_step s6b "$json" --insecure-registry && fail "resending the interrupted step reported success"
ok "kill -9 mid-switch: step reported failed (interrupted), releases show what really runs"

# --- privileges ---
run_step x7 "$(simple_json x7 stop berry)" || fail "stop before the privilege checks"

# chroot as root is refused (root can leave a chroot); user root keeps root.
run_step p1 "$(svc_json p1 start berry 1.0.0 "$D1" "$PORT" '{"isolation":"chroot","user":"root"}')" \
	--insecure-registry && fail "chroot as root started"
[[ $(field p1 .message) == *"chroot needs an unprivileged user"* ]] || fail "p1: $(final p1)"
run_step p2 "$(svc_json p2 start berry 1.0.0 "$D1" "$PORT" '{"user":"root"}')" --insecure-registry ||
	fail "user root: $(final p2)"
[[ $(ps -o user= -p "$(svc_pid)") == root ]] || fail "user: root does not run as root"
ok "isolation chroot with user root is refused; user: root runs as root"

# A listed capability is kept (ambient, across exec): bind a port below 1024.
lowport=
for p in $(shuf -i 900-1020 -n 40); do
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then lowport=$p && break; fi
done
[[ -n $lowport ]] || fail "no free port below 1024"
run_step p3 "$(svc_json p3 start berry 1.0.0 "$D1" "$lowport" '{"capabilities":["CAP_NET_BIND_SERVICE"]}')" \
	--insecure-registry || fail "CAP_NET_BIND_SERVICE service: $(final p3)"
p=$(svc_pid)
[[ $(ps -o user= -p "$p") == drover-svc && $(status_field "$p" CapEff) == 0000000000000400 &&
	$(status_field "$p" CapAmb) == 0000000000000400 && $(status_field "$p" CapBnd) == 0000000000000400 ]] ||
	fail "capabilities: $(grep ^Cap "/proc/$p/status" | tr '\n' ' ')"
[[ $(http_body "http://127.0.0.1:$lowport/version") == 1.0.0 ]] || fail "not serving on port $lowport"
run_step p4 "$(svc_json p4 start berry 1.0.0 "$D1" "$lowport")" --insecure-registry &&
	fail "port $lowport bound without CAP_NET_BIND_SERVICE"
run_step x8 "$(simple_json x8 stop berry)" || fail "stop after the capability check"
ok "capabilities: [CAP_NET_BIND_SERVICE] as drover-svc binds port $lowport; without it the start fails"

# '..' in the command path is refused before anything runs.
dotdot='{"command":["/bin/../bin/berry-svc","--port","'$PORT'"]}'
run_step p5 "$(svc_json p5 start berry 1.0.0 "$D1" "$PORT" "$dotdot")" --insecure-registry &&
	fail "a command with .. started"
[[ $(field p5 .message) == *"'..' is not allowed"* ]] || fail "p5: $(final p5)"
ok "a command path with '..' is refused"

# An image (an oci-layout on this host) with an absolute symlink to a host
# program and a setuid file.
printf '#!/bin/sh\ntouch %s/host-program-ran\nexec sleep 30\n' "$TMP" >"$TMP/host-program"
chmod 0755 "$TMP/host-program"
mkdir -p "$TMP/evil/bin" "$TMP/evil/usr/bin"
cp "$(mkimage_berry_bin)" "$TMP/evil/bin/berry-svc"
ln -s "$TMP/host-program" "$TMP/evil/bin/escape"
ln -s /bin/berry-svc "$TMP/evil/usr/bin/berry" # absolute, inside the image: fine
printf '#!/bin/sh\nexit 0\n' >"$TMP/evil/bin/suid-tool"
chmod 4755 "$TMP/evil/bin/suid-tool"
chmod 2755 "$TMP/evil/usr/bin/berry" 2>/dev/null || true
tar --numeric-owner --owner=0 --group=0 -C "$TMP/evil" -cf "$TMP/evil.tar" bin usr
D4=$(mklayout "$TMP/evil-oci" v1 application/vnd.oci.image.layer.v1.tar "$TMP/evil.tar")
evil_json() { # STEP EXTRA
	svc_json "$1" start evil 1.0.0 "$D4" "$PORT" \
		"$(jq -c --arg ref "oci-layout:$TMP/evil-oci:v1" '{image:{reference:$ref, digest:"'"$D4"'"}} + .' <<<"$2")"
}
run_step e1 "$(evil_json e1 '{"command":["/bin/escape"]}')" && fail "the host program started"
[[ ! -e $TMP/host-program-ran ]] || fail "an absolute symlink in the image ran a host program"
[[ $(field e1 .message) == *"symlinks resolve inside the release"* ]] || fail "e1: $(final e1)"
stop_on_exit evil
run_step e2 "$(evil_json e2 '{"command":["/usr/bin/berry","--name","evil","--port","'$PORT'","--listen-addr","127.0.0.1"]}')" ||
	fail "a symlink inside the image: $(final e2)"
ok "an absolute symlink in the image resolves inside the release: a host program is not reached, /usr/bin/berry -> /bin/berry-svc works"

eroot=$AGENT_DIR/releases/evil/${D4#sha256:}/rootfs
[[ $(stat -c '%a' "$eroot/bin/suid-tool") == 755 ]] || fail "setuid kept: $(stat -c '%a' "$eroot/bin/suid-tool")"
run_step e3 "$(evil_json e3 '{"command":["/bin/berry-svc","--name","evil","--port","'$PORT'","--listen-addr","127.0.0.1"],"keep_setid":true}')" ||
	fail "keep_setid start: $(final e3)"
[[ $(stat -c '%a' "$eroot/bin/suid-tool") == 4755 ]] || fail "keep_setid: $(stat -c '%a' "$eroot/bin/suid-tool")"
[[ $(status_field "$(cut -d' ' -f1 "$AGENT_DIR/state/run/evil.pid")" NoNewPrivs) == 0 ]] ||
	fail "keep_setid with no_new_privs makes the bits useless"
run_step e4 "$(evil_json e4 '{"command":["/bin/berry-svc","--name","evil","--port","'$PORT'","--listen-addr","127.0.0.1"]}')" ||
	fail "restart without keep_setid: $(final e4)"
[[ $(stat -c '%a' "$eroot/bin/suid-tool") == 755 ]] || fail "setuid back without keep_setid"
# A release an older agent unpacked (no setid list, bits still on) is
# stripped when it starts.
run_step x11 "$(simple_json x11 stop evil)" || fail "stop evil before the legacy check"
rm "${eroot%/rootfs}/setid"
chmod 4755 "$eroot/bin/suid-tool"
run_step e4b "$(evil_json e4b '{"command":["/bin/berry-svc","--name","evil","--port","'$PORT'","--listen-addr","127.0.0.1"]}')" ||
	fail "legacy release start: $(final e4b)"
[[ $(stat -c '%a' "$eroot/bin/suid-tool") == 755 && -f ${eroot%/rootfs}/setid ]] ||
	fail "a legacy release kept its setuid bit: $(stat -c '%a' "$eroot/bin/suid-tool")"
ok "setuid/setgid bits are stripped from images (4755 -> 755), back only with keep_setid: true"

# The packaged config reaches releases through a link in /etc/drover/agent
# (0700): DROVER_ROOT names the real path, which the service may search.
run_step x9 "$(simple_json x9 stop evil)" || fail "stop evil"
mkdir -p "$TMP/realrel"
ln -s "$TMP/realrel" "$TMP/rel-link"
run_step e5 "$(evil_json e5 '{"command":["/bin/berry-svc","--name","evil","--port","'$PORT'","--listen-addr","127.0.0.1"]}')" \
	--releases-dir "$TMP/rel-link" || fail "start through a linked releases dir: $(final e5)"
droot=$(tr '\0' '\n' <"/proc/$(cut -d' ' -f1 "$AGENT_DIR/state/run/evil.pid")/environ" | sed -n 's/^DROVER_ROOT=//p')
[[ $droot == "$TMP/realrel/evil/${D4#sha256:}/rootfs" ]] || fail "DROVER_ROOT is $droot"
run_step x10 "$(simple_json x10 stop evil)" --releases-dir "$TMP/rel-link" || fail "stop evil"
ok "DROVER_ROOT is the release's real path (no link through the agent's private config dir)"

echo "$TEST_NAME: $PASSED passed, 0 failed"
