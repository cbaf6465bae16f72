#!/usr/bin/env bash
# Retention on a real droverd with small limits (retention.* in
# droverd.yaml): a history of finished deployments, their instructions and a
# flood of events (as refused messages would leave) is cut to the limits in
# small batches while an agent keeps running steps; events of a running
# deployment stay; /metrics reports the rows kept per table; the limits are
# validated with file:line.
TEST_NAME=retention
source "$(dirname "$0")/link_lib.sh"

# ret_opt SECTION KEY VALUE: set retention.SECTION.KEY (KEY repeats per section).
ret_opt() {
	sed -i -E "/^  $1:/,/^  [a-z]/ s|^(    $2:).*|\1 $3|" "$COORD/droverd.yaml"
	grep -A4 "^  $1:" "$COORD/droverd.yaml" | grep -q -E "^    $2: $3\$" ||
		fail "cannot set retention.$1.$2"
}

coord_init --enroll-token
grep -q '^retention:' "$COORD/droverd.yaml" || fail "droverd init wrote no retention section"

# --- validation: errors name the file and line
cp "$COORD/droverd.yaml" "$TMP/good.yaml"
ret_opt events max_rows -5
line=$(grep -n '^    max_rows: -5' "$COORD/droverd.yaml" | cut -d: -f1)
rc=0
"$DROVERD" --config "$COORD/droverd.yaml" --check >"$TMP/check.log" 2>&1 || rc=$?
((rc == 2)) || fail "--check with max_rows -5 exited $rc: $(cat "$TMP/check.log")"
grep -q "droverd.yaml:$line: .*retention.events.max_rows" "$TMP/check.log" ||
	fail "no file:line error: $(cat "$TMP/check.log")"
cp "$TMP/good.yaml" "$COORD/droverd.yaml"
ret_opt events max_rows 0
ret_opt events max_age 0s
rc=0
"$DROVERD" --config "$COORD/droverd.yaml" --check >"$TMP/check.log" 2>&1 || rc=$?
((rc == 2)) && grep -q "grow without bound" "$TMP/check.log" ||
	fail "no limit on events accepted (exit $rc): $(cat "$TMP/check.log")"
cp "$TMP/good.yaml" "$COORD/droverd.yaml"
ok "retention limits are checked: a bad value names file:line, no limit at all is refused"

ret_opt events max_rows 300
ret_opt deployments max_rows 3
sed -i -E 's|^(  batch:).*|\1 50|; s|^(  interval:).*|\1 1s|' "$COORD/droverd.yaml"
"$DROVERD" --config "$COORD/droverd.yaml" --check >/dev/null || fail "small limits refused"

# --- a history of this hour: 20 finished deployments with acknowledged
# instructions and 20,000 events (a refused-message flood leaves agent events
# behind), written before droverd starts, as a long-running coordinator would
# have them. (Events of running deployments staying is in test_retention.c:
# droverd would end a hand-made "running" row at start-up.)
coord_start
coord_stop TERM
NOW_MS="CAST(strftime('%s','now') AS INTEGER) * 1000"
sql "INSERT INTO agents(id, public_key, key_id, status, first_seen_ms, last_seen_ms)
     VALUES ('old-host', zeroblob(32), 'k', 'rejected', 0, 0);
     WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 20)
     INSERT INTO deployments(id, name, version, plan, state, created_ms, updated_ms, finished_ms)
       SELECT 'dep-old-' || n, 'x', '1', '{}', 'succeeded', 1, 1, $NOW_MS + n FROM i;
     WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 20)
     INSERT INTO instructions(agent_id, seq, step_id, deployment_id, envelope, issued_at_ms,
       expires_at_ms, state) SELECT 'old-host', n, 's' || n, 'dep-old-' || n, x'00', 1, 2, 'acked'
       FROM i;
     WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 20000)
     INSERT INTO events(at_ms, kind, agent_id) SELECT $NOW_MS, 'agent_key_conflict', 'x' FROM i;"
[[ $(sql "SELECT count(*) FROM events") -ge 20000 ]] || fail "history not written"
ok "a history of 20 finished deployments and 20,000 events"

coord_start
agent_init r1 --enroll-token-file "$COORD/enroll.token"
agent_start r1
wait_for 30 is_state r1 connected || fail "agent not connected"
metrics() { curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$DROVER_ADDR/metrics"; }
rows() { metrics | awk -v s="drover_db_rows{table=\"$1\"}" '$1 == s {print $2}'; }
# the agent keeps running steps while the history is pruned: the link is not blocked
t0=$(date +%s%N)
for i in $(seq 1 10); do
	instruct r1 "live-$i" /bin/sh -c "echo $i >> $TMP/r1.out" >/dev/null
done
has_lines() { [[ -f $1 && $(wc -l <"$1") -ge $2 ]]; }
wait_for 30 has_lines "$TMP/r1.out" 10 || fail "steps did not run during pruning"
ms=$((($(date +%s%N) - t0) / 1000000))
pruned() {
	local ev
	ev=$(sql "SELECT count(*) FROM events WHERE deployment_id = ''")
	((ev <= 300)) && [[ $(sql "SELECT count(*) FROM deployments WHERE finished_ms > 0") == 3 ]]
}
wait_for 60 pruned || fail "not pruned: $(sql "SELECT count(*) FROM events") events, $(sql "SELECT count(*) FROM deployments") deployments"
ok "10 steps ran in $ms ms while 20,000 events and 17 deployments were pruned"

[[ $(sql "SELECT group_concat(id) FROM (SELECT id FROM deployments WHERE finished_ms > 0 ORDER BY n)") == \
	dep-old-18,dep-old-19,dep-old-20 ]] || fail "the wrong deployments were kept"
[[ $(sql "SELECT count(*) FROM instructions WHERE agent_id = 'old-host'") == 3 ]] ||
	fail "instructions of pruned deployments were kept: $(sql "SELECT count(*) FROM instructions WHERE agent_id = 'old-host'")"
[[ $(sql "SELECT count(*) FROM events WHERE kind = 'report' AND agent_id = 'r1'") -ge 10 ]] ||
	fail "the newest events were deleted"
ok "kept: the newest 300 events, the 3 newest finished deployments and their instructions"

has_rows() { [[ $(rows events) =~ ^[0-9]+$ && $(rows events) -le 400 && $(rows deployments) == 3 ]]; }
wait_for 30 has_rows || fail "metric: $(metrics | grep -E 'drover_db_rows|retention')"
metrics | grep -q 'drover_retention_deleted_rows_total{table="events"} [1-9]' ||
	fail "no deleted counter: $(metrics | grep retention)"
ok "/metrics: drover_db_rows by table ($(rows events) events, $(rows deployments) deployments, $(rows instructions) instructions) and drover_retention_deleted_rows_total"

# --- a flood while droverd runs: the table stays bounded, and so does the
# file: the pages of deleted rows are reused (no VACUUM needed)
pages() { sql "PRAGMA page_count"; }
before=$(pages)
for round in 1 2 3; do
	sql "WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 5000)
	     INSERT INTO events(at_ms, kind, agent_id)
	     SELECT $NOW_MS, 'agent_key_conflict', 'flood' FROM i;"
	wait_for 30 pruned || fail "round $round: $(sql "SELECT count(*) FROM events") events"
done
after=$(pages)
((after <= before)) || fail "the database grew: $before -> $after pages"
ok "15,000 more events while running: cut back to the limit each time, the database stays at $after pages"

echo "$TEST_NAME: all $PASSED checks passed"
