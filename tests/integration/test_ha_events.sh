#!/usr/bin/env bash
# A follower's event stream is live (issue 20): two real droverd nodes on a
# real PostgreSQL (tests/lib/pg.sh), a leads, b follows with its fallback
# poll of the store raised to an hour (ha.events_poll), so only the leader's
# NOTIFY, sent at the commit of each transaction that inserts events, can
# wake b's streams. A client follows GET /v1/events on b; once its stream
# has sent a keep-alive (its first read of the store is behind it: from
# then on it reads only when woken), a real agent enrolls with a and runs
# three instructions. The client on b gets every one of those events, in
# the leader's order, the same ids and kinds as a's own stream, each once.
TEST_NAME=ha_events
source "$(dirname "$0")/link_lib.sh"
# shellcheck source=../lib/pg.sh
source "$LIB_DIR/../lib/pg.sh"

pg_trap _cleanup
pg_start "$TMP/pg" || fail "cannot start PostgreSQL"

COORD_INIT_ARGS=(--postgres "$PG_CONNINFO" --node a)
coord_init --enroll-token
A_API=$DROVER_ADDR
set_opt "$COORD/droverd.yaml" lease 2s
coord_start
leads_a() { grep -q 'msg="this node leads the group" node=a' "$TMP/coord.log"; }
wait_for 30 leads_a || fail "node a does not lead: $(tail -n 5 "$TMP/coord.log")"

B=$TMP/b
B_LINK=$(pick_port "$LINK_PORT" "$API_PORT")
B_PORT=$(pick_port "$LINK_PORT" "$API_PORT" "$B_LINK")
B_API=http://127.0.0.1:$B_PORT
"$DROVERD" init --dir "$B" --postgres "$PG_CONNINFO" --node b --listen "tcp://127.0.0.1:$B_LINK" \
	--api "127.0.0.1:$B_PORT" >"$TMP/init-b.log" 2>&1 || fail "init b: $(cat "$TMP/init-b.log")"
set_opt "$B/droverd.yaml" lease 2s
set_opt "$B/droverd.yaml" events_poll 1h
set_opt "$B/droverd.yaml" token_recheck 2s # keep-alives every second
"$DROVERD" --config "$B/droverd.yaml" >"$TMP/coord-b.log" 2>&1 &
PIDS[b]=$!
follows_b() { [[ $(curl -sf --max-time 2 "$B_API/healthz" | jq -r .role) == follower ]]; }
wait_for 30 follows_b || fail "node b does not follow: $(tail -n 5 "$TMP/coord-b.log")"
ok "a leads, b follows; b reads the store on its own only once an hour"

START=$(curl -sf --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" "$A_API/v1/events?follow=0&tail=1" |
	sed -n 's/^id: \([0-9]*\).*/\1/p' | tail -n 1) # the position, without a cursor's holes
START=${START:-0}
curl -sS -N --max-time 120 -H "Authorization: Bearer $ADMIN_TOKEN" "$B_API/v1/events?since=$START" \
	>"$TMP/follower.sse" 2>/dev/null &
PIDS[follower]=$!
pinged() { grep -q '^: keep-alive' "$TMP/follower.sse"; }
wait_for 20 pinged || fail "b's stream sent no keep-alive: $(cat "$TMP/follower.sse")"
[[ $(grep -c '^id: ' "$TMP/follower.sse") == 0 ]] || fail "events before any were made: $(cat "$TMP/follower.sse")"
ok "a client follows b's stream, caught up and waiting"

agent_init a1 --enroll-token-file "$COORD/enroll.token"
agent_start a1
accepted() { [[ $(agent_state a1) == connected ]]; }
wait_for 30 accepted || fail "a1 did not connect to a: $(tail -n 5 "$TMP/a1.log")"
for i in 1 2 3; do
	instruct a1 "s$i" /bin/true >"$TMP/instr-$i.json" || fail "instruction $i: $(cat "$TMP/instr-$i.json")"
done
reports() { [[ $(grep -c '^event: report' "$TMP/follower.sse") -ge 6 ]]; }
wait_for 60 reports || fail "b's client did not get the reports (poll raised: only NOTIFY wakes it): $(grep '^event: ' "$TMP/follower.sse" | tr '\n' ' ')"
ok "b's client got the events the leader committed, woken by NOTIFY"

# positions: the id: line without a cursor's "~holes" (docs/api.md)
seen=$(grep '^id: ' "$TMP/follower.sse" | cut -d' ' -f2 | cut -d'~' -f1 | tr '\n' ,)
kinds=$(grep '^event: ' "$TMP/follower.sse" | cut -d' ' -f2 | tr '\n' ,)
n=$(grep -c '^id: ' "$TMP/follower.sse")
curl -sf --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" "$A_API/v1/events?follow=0&since=$START" >"$TMP/leader.sse" ||
	fail "a's events"
want=$(grep '^id: ' "$TMP/leader.sse" | head -n "$n" | cut -d' ' -f2 | cut -d'~' -f1 | tr '\n' ,)
want_kinds=$(grep '^event: ' "$TMP/leader.sse" | head -n "$n" | cut -d' ' -f2 | tr '\n' ,)
[[ $seen == "$want" ]] || fail "ids on b: $seen; on a: $want"
[[ $kinds == "$want_kinds" ]] || fail "kinds on b: $kinds; on a: $want_kinds"
[[ $(grep '^id: ' "$TMP/follower.sse" | cut -d'~' -f1 | sort | uniq -d) == "" ]] || fail "an event twice on b: $seen"
grep -q '^event: agent_accepted' "$TMP/follower.sse" || fail "no agent_accepted on b: $kinds"
ok "the same $n events on b as on a, in order, each once ($kinds)"
echo "PASS"
