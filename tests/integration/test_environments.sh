#!/usr/bin/env bash
# test_environments.sh: the same plan deployed to two environments of
# droverd.yaml with different variables, on the real droverd, two real
# drover-agents and a real registry. staging (hosts env=staging) and
# production (hosts env=production) give the service its port, its
# version text (BERRY_VERSION, served at /version) and a database password
# (a secret_file in staging) written into a file of the release. The plan's
# own selector matches both hosts; each environment's labels fence it to
# its own. Also: a variable nobody defines is a plan error with its line,
# a host outside the environment is refused, and the secret is never in an
# API answer, an event, the audit log or droverd's log.
TEST_NAME=environments
source "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"

deploy_setup
STAGE_PORT=${SVC_PORT[alpha]}
PROD_PORT=${SVC_PORT[beta]}
SECRET="pw-$RANDOM$RANDOM-staging"

coord_init
set_opt "$COORD/droverd.yaml" insecure_registry true
printf '%s\n' "$SECRET" >"$COORD/staging-db.secret"
chmod 600 "$COORD/staging-db.secret"
cat >>"$COORD/droverd.yaml" <<EOT
environments:
  staging:
    labels: { env: staging }
    vars:
      PORT: $STAGE_PORT
      GREETING: hello-staging
      DB_PASSWORD: { secret_file: staging-db.secret }
  production:
    labels: { env: production }
    vars: { PORT: $PROD_PORT, GREETING: hello-production, DB_PASSWORD: plain-prod }
  frozen:
    labels: { env: staging }
    vars: { PORT: $STAGE_PORT, GREETING: hello-frozen, DB_PASSWORD: plain-frozen }
    windows:
      - { name: big-freeze, from: "2020-01-01T00:00:00Z", until: "2099-01-01T00:00:00+01:00", reason: test freeze }
EOT
"$DROVERD" --config "$COORD/droverd.yaml" --check >"$TMP/check.out" 2>&1 ||
	fail "droverd --check: $(cat "$TMP/check.out")"
coord_start
deploy_agent stage-1 tier=web env=staging
deploy_agent prod-1 tier=web env=production
ok "droverd with environments staging and production, one agent in each"

# health.http.port is a number, not templated: HPORT is set per file below.
cat >"$TMP/plan.yaml" <<EOT
deployment: web
version: "1.0.0"
vars: { GREETING: hello-plan, LOG_LEVEL: info }
defaults:
  driver: exec
  strategy: { type: rolling, max_unavailable: 1 }
  stop_grace: 2s
  health: { http: { port: 8080, path: /health }, interval: 200ms, timeout: 1s,
            healthy_threshold: 2, unhealthy_threshold: 2, deadline: 8s }
tiers:
  - name: web
    services:
      - name: alpha
        image: $REG/berrys/berry:1.0.0
        hosts: { labels: { tier: web } }
        command: [/bin/berry-svc, --name, alpha, --port, "{{vars.PORT}}", --listen-addr, 127.0.0.1]
        env: { BERRY_VERSION: "{{vars.GREETING}}", LOG_LEVEL: "{{vars.LOG_LEVEL}}" }
        files: { /etc/alpha/db.conf: "password={{vars.DB_PASSWORD}}" }
        health: { http: { port: HPORT } }
EOT
sed "s|HPORT|1|" "$TMP/plan.yaml" >"$TMP/plan-none.yaml"
sed "s|HPORT|$STAGE_PORT|" "$TMP/plan.yaml" >"$TMP/plan-staging.yaml"
sed "s|HPORT|$PROD_PORT|" "$TMP/plan.yaml" >"$TMP/plan-production.yaml"

# 1. No environment: PORT and DB_PASSWORD are defined nowhere.
code=$(curl -sS --max-time 30 -o "$TMP/noenv.json" -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $ADMIN_TOKEN" --data-binary "@$TMP/plan-none.yaml" \
	"$DROVER_ADDR/v1/deployments?source=plan.yaml")
[[ $code == 400 && $(jq -r .error.code "$TMP/noenv.json") == invalid-plan ]] ||
	fail "no environment: $code $(cat "$TMP/noenv.json")"
jq -e '.error.errors[] | select(.line == 16 and .field == "tiers[0].services[0].command[4]" and (.message | test("unknown variable vars.PORT")))' "$TMP/noenv.json" >/dev/null ||
	fail "no line for the unknown variable: $(jq -c .error.errors "$TMP/noenv.json")"
ok "without an environment an undefined variable is a plan error at its line (16)"

# 2. staging, then production, with drover deploy --env.
"$CLI" deploy --wait --json --env staging "$TMP/plan-staging.yaml" >"$TMP/staging.json" 2>"$TMP/staging.err" ||
	fail "deploy --env staging exited $?: $(tail -n 20 "$TMP/staging.err")"
[[ $(curl -s --max-time 2 "http://127.0.0.1:$STAGE_PORT/version") == hello-staging ]] ||
	fail "staging /version: $(curl -s --max-time 2 "http://127.0.0.1:$STAGE_PORT/version")"
[[ $(jq -r '[.tiers[].services[].hosts[].id] | join(",")' "$TMP/staging.json") == stage-1 ]] ||
	fail "staging hosts: $(jq -c '[.tiers[].services[].hosts[].id]' "$TMP/staging.json")"
STAGING=$(jq -r .id "$TMP/staging.json")
ok "--env staging: $STAGING on stage-1 only, port $STAGE_PORT, /version says hello-staging"

"$CLI" deploy --wait --json --env production "$TMP/plan-production.yaml" >"$TMP/production.json" 2>"$TMP/production.err" ||
	fail "deploy --env production exited $?: $(tail -n 20 "$TMP/production.err")"
[[ $(curl -s --max-time 2 "http://127.0.0.1:$PROD_PORT/version") == hello-production ]] ||
	fail "production /version: $(curl -s --max-time 2 "http://127.0.0.1:$PROD_PORT/version")"
[[ $(jq -r '[.tiers[].services[].hosts[].id] | join(",")' "$TMP/production.json") == prod-1 ]] ||
	fail "production hosts: $(jq -c '[.tiers[].services[].hosts[].id]' "$TMP/production.json")"
[[ $(curl -s --max-time 2 "http://127.0.0.1:$STAGE_PORT/version") == hello-staging ]] ||
	fail "staging changed by the production deployment"
PRODUCTION=$(jq -r .id "$TMP/production.json")
ok "--env production: $PRODUCTION on prod-1 only, port $PROD_PORT, hello-production; staging untouched"

# 3. The file carries each environment's password, on its own host.
find_conf() { grep -rls --include=db.conf "password=" "$TMP/$1" 2>/dev/null | head -n 1; }
f=$(find_conf stage-1)
[[ -n $f && $(cat "$f") == "password=$SECRET" ]] || fail "staging db.conf: ${f:-none} $(cat "$f" 2>/dev/null)"
f=$(find_conf prod-1)
[[ -n $f && $(cat "$f") == "password=plain-prod" ]] || fail "production db.conf: ${f:-none}"
ok "files: each host's db.conf holds its environment's password (the secret reached staging)"

# 4. The deployment objects show the environment and the variables, the
# secret as <secret>.
obj=$(curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$DROVER_ADDR/v1/deployments/$STAGING")
[[ $(jq -r .environment <<<"$obj") == staging && $(jq -r .vars.DB_PASSWORD <<<"$obj") == "<secret>" &&
	$(jq -r .vars.GREETING <<<"$obj") == hello-staging && $(jq -r .vars.LOG_LEVEL <<<"$obj") == info ]] ||
	fail "staging object: $(jq -c '{environment, vars}' <<<"$obj")"
[[ $(dep_get "$PRODUCTION" .vars.DB_PASSWORD) == plain-prod ]] || fail "production vars"
ok "GET /v1/deployments/ID: environment and vars (env values over the plan's; the secret as <secret>)"

# 5. A host outside the environment is refused.
sed 's|hosts: { labels: { tier: web } }|hosts: [prod-1]|' "$TMP/plan-staging.yaml" >"$TMP/outside.yaml"
code=$(curl -sS --max-time 30 -o "$TMP/outside.json" -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $ADMIN_TOKEN" --data-binary "@$TMP/outside.yaml" \
	"$DROVER_ADDR/v1/deployments?env=staging")
[[ $code == 422 && $(jq -r .error.message "$TMP/outside.json") == *'"prod-1" is outside the plan'"'"'s environment'* ]] ||
	fail "outside: $code $(cat "$TMP/outside.json")"
ok "a plan naming prod-1 deployed to staging: 422, prod-1 is outside the plan's environment"

# 6. The plan names its environment: ?env= of another one is refused.
{ echo "environment: production"; cat "$TMP/plan-staging.yaml"; } >"$TMP/named.yaml"
rc=0
"$CLI" deploy --env staging "$TMP/named.yaml" >"$TMP/named.out" 2>&1 || rc=$?
[[ $rc == 2 ]] && grep -q 'names environment "production" but is deployed to "staging"' "$TMP/named.out" ||
	fail "named production, --env staging: exit $rc $(cat "$TMP/named.out")"
ok "a plan naming production deployed with --env staging: exit 2, says why"

# 7. The secret is nowhere but on the host.
curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" \
	"$DROVER_ADDR/v1/events?follow=0&tail=10000" >"$TMP/events.txt"
rc=0
"$CLI" deploy --dry-run --json --env staging "$TMP/plan-staging.yaml" >"$TMP/dry.json" 2>&1 || rc=$?
[[ $rc == 0 || $rc == 1 ]] || fail "dry run --env staging: exit $rc $(cat "$TMP/dry.json")"
for f in "$TMP/events.txt" "$TMP/dry.json" "$TMP/staging.json" "$TMP/coord.log"; do
	if grep -q "$SECRET" "$f"; then fail "the secret is in $(basename "$f")"; fi
done
if sql "SELECT * FROM audit" | grep -q "$SECRET"; then fail "the secret is in the audit log"; fi
curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$DROVER_ADDR/v1/deployments" >"$TMP/list.json"
if grep -q "$SECRET" "$TMP/list.json"; then fail "the secret is in the deployment list"; fi
[[ -s $TMP/events.txt && -s $TMP/list.json ]] || fail "nothing read: the secret checks proved nothing"
ok "the secret is in no API answer, event, dry run, audit row or droverd log line"

# 8. A freeze: the environment "frozen" (staging's host) is in a one-off
# deny window: refused with 409 naming it, audited; an admin overrides it
# with a reason (audited too) and the deployment runs.
post_env() { # QUERY OUT -> status
	curl -sS --max-time 30 -o "$2" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $ADMIN_TOKEN" --data-binary "@$TMP/plan-staging.yaml" \
		"$DROVER_ADDR/v1/deployments?$1"
}
code=$(post_env "env=frozen" "$TMP/frozen.json")
[[ $code == 409 && $(jq -r .error.code "$TMP/frozen.json") == window ]] ||
	fail "frozen: $code $(cat "$TMP/frozen.json")"
msg=$(jq -r .error.message "$TMP/frozen.json")
[[ $msg == *"big-freeze (until 2098-12-31T23:00:00Z): test freeze"* ]] || fail "frozen message: $msg"
ok "a deployment to an environment in a freeze: 409 \"$msg\""
code=$(post_env "env=frozen&override=" "$TMP/frozen-empty.json")
[[ $code == 403 ]] || fail "override without a reason: $code $(cat "$TMP/frozen-empty.json")"
code=$(post_env "env=frozen&override=hotfix%20for%20INC-42" "$TMP/frozen-ok.json")
[[ $code == 201 ]] || fail "override: $code $(cat "$TMP/frozen-ok.json")"
FROZEN=$(jq -r .id "$TMP/frozen-ok.json")
wait_for 60 dep_state_is "$FROZEN" succeeded || fail "$FROZEN: $(dep_get "$FROZEN" '{state,reason}')"
[[ $(curl -s --max-time 2 "http://127.0.0.1:$STAGE_PORT/version") == hello-frozen ]] || fail "override did not deploy"
[[ $(sql "SELECT count(*) FROM audit WHERE status = 409 AND detail LIKE '%refused window=big-freeze environment=frozen%'") -ge 1 ]] ||
	fail "the refusal is not audited: $(sql "SELECT status, detail FROM audit WHERE status >= 400")"
[[ $(sql "SELECT count(*) FROM audit WHERE status = 201 AND detail LIKE '%override window=big-freeze environment=frozen reason=hotfix for INC-42%'") -ge 1 ]] ||
	fail "the override is not audited: $(sql "SELECT status, detail FROM audit WHERE status = 201")"
ok "an admin overrides the freeze with ?override=REASON: $FROZEN ran; refusal and override are in the audit log"
