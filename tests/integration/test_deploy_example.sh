#!/usr/bin/env bash
# test_deploy_example.sh: `drover deploy docs/examples/berrys-rolling.yaml
# --wait` against real agents. The example is used as written except for
# what must point at this machine: the registry address, the services'
# ports (free ones instead of 8081-8088), the hook commands (the fixture
# berrys-db on a database under $TMP, a smoke test script) and the webhook
# (a berry-svc on loopback that logs every request). Four agents: db-1,
# and one per tier label (core, supporting, ui), which run several services
# each on their own ports. Then 2.5.0, which never gets healthy, rolls back:
# every service is back on 2.4.0 and the migration is down again.
TEST_NAME=deploy_example
source "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"
EXAMPLE=$REPO_DIR/docs/examples/berrys-rolling.yaml
SERVICES=(project-coordinator agent-orchestrator model-orchestration planning-system
	tool-integration service-integration api-gateway web-dashboard)

for t in docker-registry skopeo umoci; do
	command -v "$t" >/dev/null || { echo "SKIPPED $TEST_NAME: $t is not installed (make deps)" >&2; exit 77; }
done
REG_PORT=$(pick_port)
REG_DIR=$TMP/registry
registry_start "$REG_DIR" "$REG_PORT" >"$TMP/registry-start.log" 2>&1 || fail "registry_start"
REG=127.0.0.1:$REG_PORT
mkimage_berry "$TMP/oci" berry 2.4.0 >/dev/null 2>&1 || fail "mkimage 2.4.0"
mkimage_berry "$TMP/oci" berry 2.5.0 --unhealthy >/dev/null 2>&1 || fail "mkimage 2.5.0"
for s in "${SERVICES[@]}"; do
	for v in 2.4.0 2.5.0; do
		mkimage_push "$TMP/oci" "$v" "$REG_PORT" "berrys/$s" >/dev/null 2>&1 || fail "push $s:$v"
	done
done
ok "registry with the eight services at 2.4.0 and 2.5.0 (unhealthy)"

# Eight consecutive free ports for 8081..8088 (reserved: the services bind
# them only when the deployment starts them), and one for the webhook.
BASE=$(pick_run 8)
HOOK_PORT=$(pick_port "$REG_PORT")
"$(mkimage_berry_bin)" --name webhooks --port "$HOOK_PORT" --listen-addr 127.0.0.1 \
	>"$TMP/webhooks.log" 2>&1 &
PIDS[webhooks]=$!

BERRYS_DB=$TMP/db/berrys.db
BERRYS_DB=$BERRYS_DB sh "$REPO_DIR/tests/fixtures/berrys-db.sh" init >/dev/null || fail "berrys-db init"
DBTOOL="/usr/bin/env, BERRYS_DB=$BERRYS_DB, $REPO_DIR/tests/fixtures/berrys-db.sh"
cat >"$TMP/smoke.sh" <<SMOKE
#!/bin/sh
curl -fsS --max-time 2 http://127.0.0.1:$((BASE + 7))/health
SMOKE
chmod +x "$TMP/smoke.sh"

# example VERSION: the example with this machine's addresses.
example() {
	local i sub=()
	for ((i = 1; i <= 8; i++)); do sub+=(-e "s/\\b808$i\\b/$((BASE + i))/g"); done
	sed -e "s|registry.example:5000|$REG|g" -e "s|:2\\.4\\.0\$|:$1|" -e "s|^version: \"2.4.0\"|version: \"$1\"|" \
		-e "s|/usr/local/bin/berrys-db|$DBTOOL|" -e "s|/usr/local/bin/berrys-smoke|$TMP/smoke.sh|" \
		-e "s|https://hooks.example/deploy|http://127.0.0.1:$HOOK_PORT/deploy|" \
		-e "s|deadline: 60s|deadline: 6s|" -e "s|interval: 1s|interval: 200ms|" "${sub[@]}" "$EXAMPLE"
}
example 2.4.0 >"$TMP/rolling-2.4.0.yaml"
example 2.5.0 >"$TMP/rolling-2.5.0.yaml"
"$CLI" plan check "$TMP/rolling-2.4.0.yaml" >/dev/null || fail "the adapted example is invalid"
grep -q "registry.example\|hooks.example" "$TMP/rolling-2.4.0.yaml" &&
	fail "the adapted example still names example hosts"

DEPLOY_OUTBOUND=http://127.0.0.1:$HOOK_PORT/deploy
deploy_coord
deploy_agent db-1
deploy_agent core-1 tier=core
deploy_agent supporting-1 tier=supporting
deploy_agent ui-1 tier=ui
ok "droverd and four agents (db-1, one per tier)"

svc_on() { # PORT VERSION
	[[ $(curl -s --max-time 2 "http://127.0.0.1:$1/version" 2>/dev/null) == "$2" ]]
}
all_services_on() {
	local i
	for ((i = 1; i <= 8; i++)); do svc_on $((BASE + i)) "$1" || return 1; done
}
db_version() { BERRYS_DB=$BERRYS_DB sh "$REPO_DIR/tests/fixtures/berrys-db.sh" version; }

"$CLI" deploy --wait "$TMP/rolling-2.4.0.yaml" >"$TMP/deploy-2.4.0.out" 2>&1 ||
	fail "drover deploy --wait example 2.4.0 exited $?: $(tail -n 20 "$TMP/deploy-2.4.0.out")"
all_services_on 2.4.0 || fail "not every service serves 2.4.0"
[[ $(db_version) == 42 ]] || fail "migration 42 not applied: $(db_version)"
ls "$TMP"/db/backups/* >/dev/null 2>&1 || fail "no backup made by the pre hook"
ok "drover deploy --wait docs/examples/berrys-rolling.yaml: exit 0, 8 services on 2.4.0, backup, migration 42"

# A deployer may not make droverd request what droverd.yaml does not allow:
# here droverd's own API, which a webhook POST would reach from inside.
sed -e "s|http://127.0.0.1:$HOOK_PORT/deploy|http://127.0.0.1:$API_PORT/v1/tokens|" \
	"$TMP/rolling-2.4.0.yaml" >"$TMP/ssrf.yaml"
"$CLI" deploy "$TMP/ssrf.yaml" >"$TMP/ssrf.out" 2>&1 && fail "a plan with a webhook outside outbound.allow was accepted"
grep -q "notify\[0\].webhook.*outbound.allow" "$TMP/ssrf.out" ||
	fail "the refusal does not name the field and outbound.allow: $(cat "$TMP/ssrf.out")"
ok "a webhook outside outbound.allow is refused: $(grep -m1 outbound "$TMP/ssrf.out")"

posts() { grep -c "POST /deploy" "$TMP/webhooks.log" || true; }
wait_for 20 test "$(posts)" -ge 5 || fail "webhooks: $(posts) POSTs, want started, 3 x tier_done, succeeded"
ok "webhooks: $(posts) notifications POSTed (started, tier_done x3, succeeded)"

rc=0
"$CLI" deploy --wait "$TMP/rolling-2.5.0.yaml" >"$TMP/deploy-2.5.0.out" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "deploy 2.5.0 exited $rc, want 1: $(tail -n 20 "$TMP/deploy-2.5.0.out")"
tail -n 1 "$TMP/deploy-2.5.0.out" | grep -q " rolled_back in " || fail "final line: $(tail -n 3 "$TMP/deploy-2.5.0.out")"
all_services_on 2.4.0 || fail "after the rollback not every service serves 2.4.0"
[[ $(db_version) == 41 ]] || fail "migration not taken down: $(db_version)"
ok "2.5.0 (unhealthy): exit 1, rolled back, every service on 2.4.0, migration down to 41"
