#!/usr/bin/env bash
# The API over HTTPS (libmicrohttpd with GnuTLS): `droverd init --api-tls`
# makes api.crt/api.key and turns it on; curl and the CLI reach it only with
# the certificate pinned (--cacert / DROVER_CACERT), never with another one
# or in plain HTTP; --check refuses a readable key, and refuses a node of an
# HA group whose API leaves loopback without HTTPS.
TEST_NAME=api_https
source "$(dirname "$0")/link_lib.sh"

coord_init --api-tls
[[ -s $COORD/api.crt && -s $COORD/api.key ]] || fail "init made no api.crt/api.key"
[[ $(stat -c %a "$COORD/api.key") == 600 ]] || fail "api.key is not 0600"
grep -q "api_cert: \"$COORD/api.crt\"" "$COORD/droverd.yaml" || fail "tls.api_cert not set"
export DROVER_ADDR=https://127.0.0.1:$API_PORT
export CURL_CA_BUNDLE=$COORD/api.crt # link_lib's own curl calls pin it too
coord_start
ok "droverd serves its API over HTTPS"

h=$(curl -sS --max-time 5 --cacert "$COORD/api.crt" "$DROVER_ADDR/healthz")
[[ $(jq -r .status <<<"$h") == ok && $(jq -r .role <<<"$h") == leader ]] || fail "healthz: $h"
rc=0
env -u CURL_CA_BUNDLE curl -sS --max-time 5 -o /dev/null "$DROVER_ADDR/healthz" 2>/dev/null || rc=$?
((rc == 60)) || fail "curl trusted the self-signed certificate without it pinned (exit $rc)"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$API_PORT/healthz" || true)
[[ $code != 200 ]] || fail "plain HTTP answered on the HTTPS port"
ok "curl: 200 with the certificate pinned; refused without it and in plain HTTP"

DROVER_CACERT=$COORD/api.crt "$CLI" agents --json >"$TMP/cli.out" 2>&1 ||
	fail "CLI with the pinned certificate: $(cat "$TMP/cli.out")"
rc=0
env -u CURL_CA_BUNDLE "$CLI" agents --json >"$TMP/cli.out" 2>&1 || rc=$?
((rc == 3)) || fail "CLI without the certificate: exit $rc, $(cat "$TMP/cli.out")"
"$DROVERD" init --dir "$TMP/other" --api-tls >/dev/null 2>&1 || fail "second init"
rc=0
env -u CURL_CA_BUNDLE "$CLI" --cacert "$TMP/other/api.crt" agents --json >"$TMP/cli.out" 2>&1 || rc=$?
((rc == 3)) || fail "CLI with another node's certificate: exit $rc"
grep -qi "certificate\|SSL" "$TMP/cli.out" || fail "no word of the certificate: $(cat "$TMP/cli.out")"
ok "the CLI reaches the API with --cacert/DROVER_CACERT, not without it or with another certificate"

chmod 644 "$COORD/api.key"
"$DROVERD" --config "$COORD/droverd.yaml" --check >"$TMP/check.out" 2>&1 &&
	fail "--check accepted a readable api.key"
grep -q "chmod 600" "$TMP/check.out" || fail "--check: $(cat "$TMP/check.out")"
chmod 600 "$COORD/api.key"
ok "--check refuses an API key that others can read"

# a follower over HTTPS whose leader is announced in plain HTTP: the CLI
# does not carry its token down
coord_stop TERM
sed -i -E "s|^( *)# force_role:.*|\1force_role: follower|; s|^( *)# force_leader:.*|\1force_leader: http://127.0.0.1:9|" \
	"$COORD/droverd.yaml"
coord_start
rc=0
DROVER_CACERT=$COORD/api.crt "$CLI" agents accept nobody >"$TMP/cli.out" 2>&1 || rc=$?
((rc != 0)) || fail "the CLI followed a redirect from HTTPS to HTTP"
grep -q "not following" "$TMP/cli.out" || fail "CLI: $(cat "$TMP/cli.out")"
ok "the CLI does not follow a redirect from HTTPS down to plain HTTP"

cp "$COORD/droverd.yaml" "$TMP/group.yaml"
sed -i -E '/^ *api_(cert|key):/d' "$TMP/group.yaml"
set_opt "$TMP/group.yaml" api 0.0.0.0:$API_PORT
sed -i -E "s|^( *)force_role:.*|\1force_role: leader|" "$TMP/group.yaml"
"$DROVERD" --config "$TMP/group.yaml" --check >"$TMP/check.out" 2>&1 &&
	fail "--check accepted a group node with plain HTTP beyond loopback"
grep -q "only over HTTPS" "$TMP/check.out" || fail "--check: $(cat "$TMP/check.out")"
# the same for a node on the shared PostgreSQL store (no role fixed)
sed -i -E "s|^( *)force_role:.*|\1# force_role:|" "$TMP/group.yaml"
sed -i -E "s|^( *)(# )?dsn:.*|\1dsn: \"host=/nonexistent dbname=drover\"|" "$TMP/group.yaml"
grep -q 'dsn: "host=' "$TMP/group.yaml" || fail "cannot set store.postgres.dsn"
chmod 600 "$TMP/group.yaml"
"$DROVERD" --config "$TMP/group.yaml" --check >"$TMP/check.out" 2>&1 &&
	fail "--check accepted a PostgreSQL node with plain HTTP beyond loopback"
grep -q "only over HTTPS" "$TMP/check.out" || fail "--check (postgres): $(cat "$TMP/check.out")"
ok "a node of an HA group may not serve plain HTTP beyond loopback"
