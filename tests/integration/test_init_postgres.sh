#!/usr/bin/env bash
# `droverd init --postgres DSN` against a real PostgreSQL (tests/lib/pg.sh:
# initdb in the test's temp dir as an unprivileged user, unix socket only):
#   - node a: droverd.yaml (mode 0600: it holds the DSN, here with a
#     password) names the store, ha.node and ha.url; no SQLite file; the
#     schema and the admin token are in PostgreSQL; --check passes; the node
#     starts, leads and answers its admin token;
#   - node b, DSN on standard input (--postgres -), API on 0.0.0.0: HTTPS is
#     implied (a group's API beyond loopback must be), ha.url is https://,
#     its token is admin-b (a is taken), enroll token init-b; it follows a;
#   - refusals: --node without --postgres, a bad node name, a database that
#     cannot be reached (nothing written).
TEST_NAME=init_postgres
source "$(dirname "$0")/link_lib.sh"
# shellcheck source=../lib/pg.sh
source "$LIB_DIR/../lib/pg.sh"

pg_trap _cleanup
pg_start "$TMP/pg" || fail "cannot start PostgreSQL"
ok "PostgreSQL running in $TMP/pg (unix socket)"

A=$TMP/a
LINK_PORT=$(pick_port)
API_PORT=$(pick_port "$LINK_PORT")
DSN="$PG_CONNINFO password=s3cret-pw"
"$DROVERD" init --dir "$A" --postgres "$DSN" --node a --listen "tcp://127.0.0.1:$LINK_PORT" \
	--api "127.0.0.1:$API_PORT" >"$TMP/init-a.out" 2>"$TMP/init-a.err" ||
	fail "init a: $(cat "$TMP/init-a.err")"
[[ $(stat -c %a "$A/droverd.yaml") == 600 ]] || fail "droverd.yaml holding the DSN is $(stat -c %a "$A/droverd.yaml")"
grep -qF "dsn: \"$DSN\"" "$A/droverd.yaml" || fail "store.postgres.dsn not written: $(grep -n dsn "$A/droverd.yaml")"
grep -qE '^  node: "?a"?$' "$A/droverd.yaml" || fail "ha.node not written: $(grep -n node "$A/droverd.yaml")"
grep -qE "^  url: \"?http://127\.0\.0\.1:$API_PORT\"?\$" "$A/droverd.yaml" ||
	fail "ha.url not written: $(grep -n 'url:' "$A/droverd.yaml")"
[[ ! -e $A/droverd.db ]] || fail "init --postgres made a SQLite file"
! grep -qF s3cret-pw "$TMP/init-a.out" "$TMP/init-a.err" || fail "init printed the password"
grep -q "node a of the HA group" "$TMP/init-a.out" || fail "init output: $(cat "$TMP/init-a.out")"
[[ $(pg_sql "SELECT name || ' ' || role FROM api_tokens ORDER BY name") == "admin admin" ]] ||
	fail "tokens in PostgreSQL: $(pg_sql 'SELECT name, role FROM api_tokens')"
"$DROVERD" --config "$A/droverd.yaml" --check >"$TMP/check-a.log" 2>&1 || fail "--check a: $(cat "$TMP/check-a.log")"
chmod 644 "$A/droverd.yaml"
"$DROVERD" --config "$A/droverd.yaml" --check >"$TMP/check-644.log" 2>&1 && fail "--check passed a readable DSN"
grep -q "chmod 600" "$TMP/check-644.log" || fail "--check on a readable DSN: $(cat "$TMP/check-644.log")"
chmod 600 "$A/droverd.yaml"
ok "init a: droverd.yaml 0600 with store.postgres.dsn, ha.node, ha.url; schema and admin token in PostgreSQL"

set_opt "$A/droverd.yaml" lease 2s
COORD=$A
export DROVER_ADDR=http://127.0.0.1:$API_PORT
export DROVER_TOKEN_FILE=$A/admin.token
coord_start
grep -q 'msg="this node leads the group" node=a epoch=1' "$TMP/coord.log" || fail "node a does not lead: $(tail -n 5 "$TMP/coord.log")"
"$CLI" agents --json >"$TMP/agents.json" 2>&1 || fail "node a refuses its admin token: $(cat "$TMP/agents.json")"
ok "node a starts, leads (epoch 1) and accepts its admin.token from PostgreSQL"

B=$TMP/b
B_LINK=$(pick_port "$LINK_PORT" "$API_PORT")
B_API=$(pick_port "$LINK_PORT" "$API_PORT" "$B_LINK")
printf '%s\n' "$PG_CONNINFO" | "$DROVERD" init --dir "$B" --postgres - --node b \
	--listen "tcp://127.0.0.1:$B_LINK" --api "0.0.0.0:$B_API" --enroll-token \
	>"$TMP/init-b.out" 2>"$TMP/init-b.err" || fail "init b: $(cat "$TMP/init-b.err")"
grep -qF "dsn: \"$PG_CONNINFO\"" "$B/droverd.yaml" || fail "DSN from stdin not written: $(grep -n dsn "$B/droverd.yaml")"
grep -q "api_cert: \"$B/api.crt\"" "$B/droverd.yaml" || fail "API beyond loopback without HTTPS"
grep -q "beyond loopback: the API serves HTTPS" "$TMP/init-b.err" || fail "init b did not say it turned HTTPS on"
grep -qE "^  url: \"?https://$(hostname):$B_API\"?\$" "$B/droverd.yaml" ||
	fail "ha.url of b: $(grep -n 'url:' "$B/droverd.yaml")"
openssl x509 -in "$B/api.crt" -noout -ext subjectAltName | grep -q "DNS:$(hostname)" ||
	fail "api.crt of b does not name the host"
[[ $(pg_sql "SELECT string_agg(name, ' ' ORDER BY name) FROM api_tokens") == "admin admin-b" ]] ||
	fail "tokens: $(pg_sql 'SELECT name FROM api_tokens')"
[[ $(pg_sql "SELECT name FROM enroll_tokens") == init-b ]] || fail "enroll tokens: $(pg_sql 'SELECT name FROM enroll_tokens')"
grep -q admin-b "$TMP/init-b.err" || fail "init b did not name its token"
"$DROVERD" --config "$B/droverd.yaml" >"$TMP/coord-b.log" 2>&1 &
PIDS[b]=$!
follows_b() { grep -q 'msg="following: waiting for the leader lease" node=b' "$TMP/coord-b.log"; }
wait_for 30 follows_b || fail "node b does not follow: $(tail -n 5 "$TMP/coord-b.log")"
ok "init b (DSN on stdin, API on 0.0.0.0): HTTPS implied, ha.url https://$(hostname):$B_API, token admin-b, enroll token init-b; b follows"

# b takes over when a stops, and its admin-b token works there (HTTPS, pinned).
coord_stop TERM
b_leads() { grep -q 'msg="this node leads the group" node=b epoch=2' "$TMP/coord-b.log"; }
wait_for 20 b_leads || fail "node b did not lead after a stopped: $(tail -n 5 "$TMP/coord-b.log")"
b_healthy() { curl -sf --max-time 2 --cacert "$B/api.crt" --resolve "$(hostname):$B_API:127.0.0.1" "https://$(hostname):$B_API/healthz" >/dev/null; }
wait_for 30 b_healthy || fail "node b does not serve HTTPS"
DROVER_CACERT=$B/api.crt DROVER_TOKEN_FILE=$B/admin.token "$CLI" --coordinator "https://127.0.0.1:$B_API" \
	agents --json >"$TMP/agents-b.json" 2>&1 || fail "node b refuses admin-b: $(cat "$TMP/agents-b.json")"
ok "node b leads after a's graceful stop and accepts admin-b over HTTPS"

# Refusals: nothing is written.
rc=0
"$DROVERD" init --dir "$TMP/x1" --node x >"$TMP/x1.log" 2>&1 || rc=$?
((rc == 2)) && grep -q "give --postgres" "$TMP/x1.log" || fail "--node without --postgres: exit $rc: $(cat "$TMP/x1.log")"
rc=0
"$DROVERD" init --dir "$TMP/x2" --postgres "$PG_CONNINFO" --node 'a/b' >"$TMP/x2.log" 2>&1 || rc=$?
((rc == 2)) && grep -q -- "--node: 1 to 64" "$TMP/x2.log" || fail "bad node name: exit $rc: $(cat "$TMP/x2.log")"
rc=0
"$DROVERD" init --dir "$TMP/x3" --postgres "host=$TMP/nowhere dbname=postgres user=drover connect_timeout=2" \
	>"$TMP/x3.log" 2>&1 || rc=$?
((rc == 1)) && grep -q "cannot open the PostgreSQL store" "$TMP/x3.log" || fail "unreachable database: exit $rc: $(cat "$TMP/x3.log")"
[[ ! -e $TMP/x3/droverd.yaml && ! -e $TMP/x3/droverd.db ]] || fail "init wrote a config for an unreachable database"
ok "refused: --node without --postgres, a bad node name, an unreachable database (nothing written)"
echo "$TEST_NAME: all $PASSED checks passed"
