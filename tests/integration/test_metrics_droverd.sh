#!/usr/bin/env bash
# The real droverd's GET /metrics with a connected agent that ran steps:
# promtool accepts it, and it carries agents by state, instructions sent and
# acknowledged, and step durations by kind and result from the agents'
# reports (coordinator/link/report_metrics.h).
TEST_NAME=metrics_droverd
source "$(dirname "$0")/link_lib.sh"
if ! command -v promtool >/dev/null; then
	echo "SKIPPED $TEST_NAME: promtool is missing (Debian package prometheus; make deps): droverd's /metrics NOT validated" >&2
	exit 77
fi

coord_init --enroll-token
coord_start
agent_init m1 --enroll-token-file "$COORD/enroll.token"
agent_start m1
wait_for 30 is_state m1 connected || fail "agent not connected: $(agents_json)"
ok "droverd and one agent"

# Step ids in the sequencer's form, so the kind label is "pre" and "post".
instruct m1 "dep-m:pre:0:0" /bin/sh -c 'sleep 0.2' >/dev/null
instruct m1 "dep-m:post:0:0" /bin/sh -c 'exit 4' >/dev/null
instruct m1 "hand-made" /bin/true >/dev/null
metrics() { curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$DROVER_ADDR/metrics"; }
value() { metrics | awk -v s="$1" '$1 == s {print $2}'; }
has() { [[ $(value "$1") == "$2" ]]; }
wait_for 30 has 'drover_step_duration_seconds_count{kind="pre",result="succeeded"}' 1 ||
	fail "no pre step in the metrics: $(metrics | grep step_duration)"
wait_for 30 has 'drover_step_duration_seconds_count{kind="post",result="failed"}' 1 ||
	fail "no failed post step: $(metrics | grep step_duration)"
wait_for 30 has 'drover_step_duration_seconds_count{kind="other",result="succeeded"}' 1 ||
	fail "no other step: $(metrics | grep step_duration)"
sum=$(value 'drover_step_duration_seconds_sum{kind="pre",result="succeeded"}')
awk -v s="$sum" 'BEGIN { exit !(s >= 0.2 && s < 30) }' || fail "pre step took $sum s"
has 'drover_step_duration_seconds_bucket{kind="pre",result="succeeded",le="0.1"}' 0 ||
	fail "a 0.2 s step in the 0.1 s bucket"
ok "step durations by kind and result (pre took $sum s)"

metrics >"$TMP/metrics.txt"
promtool check metrics <"$TMP/metrics.txt" || fail "promtool rejects droverd's /metrics"
ok "promtool check metrics accepts droverd's /metrics"
for m in 'drover_agents{state="connected"} 1' 'drover_agents{state="pending"} 0'; do
	grep -qxF "$m" "$TMP/metrics.txt" || fail "missing: $m"
done
sent=$(awk '$1 == "drover_link_instructions_sent_total" {print $2}' "$TMP/metrics.txt")
acked=$(awk '$1 == "drover_link_instructions_acked_total" {print $2}' "$TMP/metrics.txt")
[[ $sent -ge 3 && $acked -ge 3 ]] || fail "instructions sent $sent, acked $acked"
grep -q '^# TYPE drover_link_rejected_total counter' "$TMP/metrics.txt" || fail "no rejections counter"
for m in drover_image_pulls_total drover_image_pull_bytes_total drover_health_check_failures_total; do
	grep -q "^# TYPE $m counter" "$TMP/metrics.txt" || fail "$m not registered"
done
ok "agents by state, instructions sent ($sent) and acknowledged ($acked), rejections, pulls, bytes, health failures registered"
echo "$TEST_NAME: all $PASSED checks passed"
