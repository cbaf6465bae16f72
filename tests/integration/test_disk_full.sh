#!/usr/bin/env bash
# The coordinator's disk full, then read-only, under a real droverd with a
# connected agent. Its state directory is a small loop-mounted ext4 file
# system (errors=remount-ro, no reserved blocks):
#  - full (a file fills it): reads go on (GET /v1/agents, /v1/deployments,
#    /metrics), /healthz says degraded, changes get 507 with a JSON error
#    naming the directory, the agent stays connected; the file removed,
#    droverd accepts changes again without a restart, and a step queued
#    before the disk filled reports back;
#  - read-only (the kernel's remount after an error, the way a disk goes
#    read-only under a running process): reads go on, changes get 503, the
#    agent stays connected, and its reports, which cannot be stored, are
#    refused so that the agent keeps them and sends them again.
# Mounts and loop devices are removed on exit, also on failure.
TEST_NAME=disk_full
source "$(dirname "$0")/link_lib.sh"

((EUID == 0)) || {
	echo "SKIPPED $TEST_NAME: needs root (mount)" >&2
	exit 77
}
for t in mkfs.ext4 losetup findmnt; do
	command -v "$t" >/dev/null || {
		echo "SKIPPED $TEST_NAME: $t is missing (e2fsprogs, mount)" >&2
		exit 77
	}
done

IMG=$TMP/state.img
MNT=$TMP/coord
LOOP=
disk_cleanup() {
	local rc=$? name
	budget_end
	for name in "${!PIDS[@]}"; do _stop_pid "${PIDS[$name]}"; done
	[[ -n $COORD_PID ]] && _stop_pid "$COORD_PID"
	COORD_PID=
	if findmnt "$MNT" >/dev/null 2>&1; then umount "$MNT" || umount -l "$MNT" || true; fi
	[[ -n $LOOP ]] && losetup -d "$LOOP" 2>/dev/null || true
	(exit "$rc")
	_cleanup
}
trap disk_cleanup EXIT

truncate -s 48M "$IMG"
mkfs.ext4 -q -F -m 0 "$IMG" || fail "mkfs.ext4"
LOOP=$(losetup --find --show "$IMG") || fail "no loop device"
mkdir -p "$MNT"
mount -t ext4 -o errors=remount-ro "$LOOP" "$MNT" || {
	echo "SKIPPED $TEST_NAME: cannot mount ext4 on $LOOP here" >&2
	exit 77
}
coord_init --enroll-token
set_opt "$COORD/droverd.yaml" min_free 1048576
coord_start
agent_init a1 --enroll-token-file "$COORD/enroll.token"
agent_start a1
wait_for 30 is_state a1 connected || fail "agent not connected"
instruct a1 s1 /bin/sh -c "echo s1 >> $TMP/a1.out" >/dev/null
has_lines() { [[ -f $1 && $(wc -l <"$1") -ge $2 ]]; }
wait_for 20 has_lines "$TMP/a1.out" 1 || fail "s1 did not run"
ok "droverd on a 48 MiB ext4 state directory, agent connected, a step ran"

api() { curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$@"; }
code_of() { api -o "$TMP/body" -w '%{http_code}' "$@"; }
health() { curl -sS --max-time 5 "$DROVER_ADDR/healthz" | jq -r '.status + " " + (.reason // "")'; }
health_is() { [[ $(health) == "$1" ]]; }
reads_ok() {
	local p
	for p in /v1/agents /v1/deployments /metrics; do
		[[ $(code_of "$DROVER_ADDR$p") == 200 ]] || fail "GET $p: $(cat "$TMP/body")"
	done
}
post_step() {
	jq -n --arg s "$1" '{step_id: $s, run: ["/bin/sh", "-c", $ARGS.positional[0]]}' \
		--args "$2" | api -o "$TMP/body" -w '%{http_code}' -X POST --data-binary @- \
		"$DROVER_ADDR/v1/agents/a1/instructions"
}

# --- full
# a step that is still running when the disk fills: its report comes later
instruct a1 s2 /bin/sh -c "sleep 4; echo s2 >> $TMP/a1.out" >/dev/null
dd if=/dev/zero of="$MNT/filler" bs=1M >/dev/null 2>&1 || true
[[ $(df --output=avail -B1 "$MNT" | tail -1) -lt 1048576 ]] || fail "the disk is not full"
wait_for 10 health_is "degraded storage-full" || fail "/healthz: $(health)"
reads_ok
st=$(post_step s3 "echo s3 >> $TMP/a1.out")
[[ $st == 507 ]] || fail "a change on a full disk got $st: $(cat "$TMP/body")"
jq -e --arg d "$MNT" '.error.code == "storage-full" and (.error.message | contains($d) and contains("full"))' \
	"$TMP/body" >/dev/null || fail "error body: $(cat "$TMP/body")"
ok "disk full: reads answer 200, /healthz degraded, a change gets 507: $(jq -r .error.message "$TMP/body")"
sleep 6 # longer than link.liveness_timeout (5s)
is_state a1 connected || fail "the agent was disconnected while the disk was full"
ok "the agent stays connected while the disk is full"

rm -f "$MNT/filler"
wait_for 10 health_is "ok " || fail "/healthz after space returned: $(health)"
st=$(post_step s3 "echo s3 >> $TMP/a1.out")
[[ $st == 201 || $st == 200 || $st == 202 ]] || fail "a change after space returned got $st: $(cat "$TMP/body")"
wait_for 30 has_lines "$TMP/a1.out" 3 || fail "steps after recovery: $(cat "$TMP/a1.out")"
grep -qx s2 "$TMP/a1.out" || fail "s2 did not run"
stored() { [[ $(sql "SELECT count(*) FROM events WHERE kind = 'report' AND data LIKE '%\"s2\"%' AND data LIKE '%succeeded%'") -ge 1 ]]; }
wait_for 30 stored || fail "s2's report was never stored"
ok "space back: changes accepted again without a restart, s2's report stored, s3 ran"

# --- read-only: the kernel remounts after an error, under the running droverd
dev=$(basename "$LOOP")
trig=/sys/fs/ext4/$dev/trigger_fs_error
if [[ ! -w $trig ]]; then
	echo "$TEST_NAME: no $trig on this kernel: the read-only part is skipped" >&2
	echo "$TEST_NAME: all $PASSED checks passed (read-only part skipped)"
	exit 0
fi
refused_before=$(grep -c "report refused, will retry" "$TMP/a1.log" || true)
instruct a1 s4 /bin/sh -c "sleep 3; echo s4 >> $TMP/a1.out" >/dev/null
wait_for 10 grep -q "step=s4" "$TMP/a1.log" || fail "s4 did not start"
echo "drover test: read-only" >"$trig"
touch "$MNT/probe" 2>/dev/null && fail "the file system is still writable"
wait_for 10 health_is "degraded storage-read-only" || fail "/healthz on a read-only disk: $(health); $(grep -E "level=(warn|error)" "$TMP/coord.log" | tail -8)"
reads_ok
st=$(post_step s5 "true")
[[ $st == 503 ]] || fail "a change on a read-only disk got $st: $(cat "$TMP/body")"
jq -e '.error.code == "storage-read-only"' "$TMP/body" >/dev/null || fail "error body: $(cat "$TMP/body")"
ok "read-only: reads answer 200, /healthz degraded, a change gets 503: $(jq -r .error.message "$TMP/body")"
wait_for 20 has_lines "$TMP/a1.out" 4 || fail "s4 did not run"
resent() { [[ $(grep -c "report refused, will retry" "$TMP/a1.log") -gt $refused_before ]]; }
wait_for 20 resent || fail "the agent's report was not refused while the disk is read-only"
sleep 6
is_state a1 connected || fail "the agent was disconnected while the disk was read-only"
ok "the agent stays connected; its report, which cannot be stored, is refused and sent again"
echo "$TEST_NAME: all $PASSED checks passed"
