#!/usr/bin/env bash
# test_promotion.sh: promotion of a release through a lifecycle
# (dev -> staging -> production) on the real droverd, real drover-agents
# and a real registry. One plan; each environment gives the service its own
# port and greeting (BERRY_VERSION, served at /version). dev and staging
# share a host (labels env=staging), production has its own.
#   - a release that has not succeeded in the phase before is refused, with
#     the lifecycle in the message (409 lifecycle), directly or promoted
#     from the wrong phase; an admin may override with a reason (audited),
#     a deployer may not (403);
#   - a failed deployment cannot be promoted (409 not-succeeded);
#   - drover promote-release ID --to staging, then --to production: the
#     same release id and image digest everywhere, each environment's
#     variables, promoted_from and the audit row say where it came from;
#   - an environment missing a variable the release uses: 400 with the name.
TEST_NAME=promotion
source "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"

deploy_setup
DEV_PORT=${SVC_PORT[gamma]}
STAGE_PORT=${SVC_PORT[alpha]}
PROD_PORT=${SVC_PORT[beta]}

coord_init
set_opt "$COORD/droverd.yaml" insecure_registry true
cat >>"$COORD/droverd.yaml" <<EOT
environments:
  dev:
    labels: { env: staging }
    vars: { PORT: $DEV_PORT, GREETING: hello-dev }
  staging:
    labels: { env: staging }
    vars: { PORT: $STAGE_PORT, GREETING: hello-staging }
  production:
    labels: { env: production }
    vars: { PORT: $PROD_PORT, GREETING: hello-production }
  qa:
    labels: { env: staging }
    vars: { GREETING: hello-qa }
lifecycles:
  main:
    phases: [dev, staging, production]
EOT
"$DROVERD" --config "$COORD/droverd.yaml" --check >"$TMP/check.out" 2>&1 ||
	fail "droverd --check: $(cat "$TMP/check.out")"
# a phase that is no environment is refused at start, with its line
cp "$COORD/droverd.yaml" "$TMP/bad.yaml"
sed -i 's/phases: \[dev, staging, production\]/phases: [dev, stagin, production]/' "$TMP/bad.yaml"
if "$DROVERD" --config "$TMP/bad.yaml" --check >"$TMP/bad.out" 2>&1; then fail "a misspelt phase passed --check"; fi
grep -q 'lifecycles.main.phases\[1\]: no environment named "stagin"' "$TMP/bad.out" ||
	fail "misspelt phase: $(cat "$TMP/bad.out")"
coord_start
deploy_agent stage-1 tier=web env=staging
deploy_agent prod-1 tier=web env=production
DEPLOYER=$("$DROVERD" token create --db "$COORD/droverd.db" --role deployer --name ci 2>/dev/null) ||
	fail "token create"
ok "droverd with lifecycle dev -> staging -> production (a misspelt phase fails --check)"

# health: none: the environments' ports differ and a check's port is not
# a variable; the test reads /version on each port itself.
plan() { # FILE VERSION [COMMAND]
	cat >"$1" <<EOT
deployment: web
version: "$2"
vars: { GREETING: hello-plan }
defaults:
  driver: exec
  strategy: { type: rolling, max_unavailable: 1 }
  stop_grace: 2s
  health: none
tiers:
  - name: web
    services:
      - name: alpha
        image: $REG/berrys/berry:$2
        hosts: { labels: { tier: web } }
        command: [${3:-/bin/berry-svc}, --name, alpha, --port, "{{vars.PORT}}", --listen-addr, 127.0.0.1]
        env: { BERRY_VERSION: "{{vars.GREETING}}" }
EOT
}
plan "$TMP/v1.yaml" 1.0.0
plan "$TMP/v2.yaml" 2.0.0
plan "$TMP/broken.yaml" 2.0.0 /bin/no-such-program
post() { # TOKEN PATH [FILE|-d JSON] -> status; body in $TMP/out.json
	local tok=$1 path=$2
	shift 2
	curl -sS --max-time 60 -o "$TMP/out.json" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $tok" "$@" "$DROVER_ADDR$path"
}
version_on() { curl -s --max-time 2 "http://127.0.0.1:$1/version" 2>/dev/null || true; }

# 1. A new release straight to staging: it has not been through dev.
code=$(post "$ADMIN_TOKEN" "/v1/deployments?env=staging" --data-binary "@$TMP/v1.yaml")
msg=$(jq -r .error.message "$TMP/out.json")
[[ $code == 409 && $(jq -r .error.code "$TMP/out.json") == lifecycle &&
	$msg == *"has not succeeded in dev: staging accepts only releases that did (lifecycle main: dev -> staging -> production)"* ]] ||
	fail "v1 straight to staging: $code $(cat "$TMP/out.json")"
ok "a release deployed straight to staging: 409 lifecycle: $msg"

# 2. dev first.
"$CLI" deploy --wait --json --env dev "$TMP/v1.yaml" >"$TMP/dev.json" 2>"$TMP/dev.err" ||
	fail "deploy --env dev exited $?: $(tail -n 20 "$TMP/dev.err")"
DEV=$(jq -r .id "$TMP/dev.json")
REL=$(jq -r .release "$TMP/dev.json")
[[ $REL == rel-* && $(version_on "$DEV_PORT") == hello-dev ]] ||
	fail "dev: release $REL, /version $(version_on "$DEV_PORT")"
ok "dev: $DEV, release $REL, port $DEV_PORT says hello-dev"

# 3. dev -> production skips staging: refused.
code=$(post "$ADMIN_TOKEN" "/v1/deployments/$DEV/promote-release" -d '{"to":"production"}')
[[ $code == 409 && $(jq -r .error.code "$TMP/out.json") == lifecycle &&
	$(jq -r .error.message "$TMP/out.json") == *"production accepts releases promoted from staging"*"deployment $DEV went to dev"* ]] ||
	fail "dev -> production: $code $(cat "$TMP/out.json")"
ok "promote-release $DEV --to production: 409, production takes releases from staging only"

# 4. A failed deployment cannot be promoted.
rc=0
"$CLI" deploy --wait --json --env dev "$TMP/broken.yaml" >"$TMP/broken.json" 2>"$TMP/broken.err" || rc=$?
[[ $rc == 1 ]] || fail "broken release in dev exited $rc: $(tail -n 5 "$TMP/broken.err")"
BROKEN=$(jq -r .id "$TMP/broken.json")
rc=0
"$CLI" promote-release "$BROKEN" --to staging >"$TMP/pb.out" 2>&1 || rc=$?
[[ $rc == 2 ]] && grep -q "deployment $BROKEN of release rel-.* is $(jq -r .state "$TMP/broken.json") in dev: only a release that succeeded there can be promoted" "$TMP/pb.out" ||
	fail "promote of the failed one: exit $rc $(cat "$TMP/pb.out")"
ok "promote-release of a $(jq -r .state "$TMP/broken.json") deployment: exit 2, $(head -c 160 "$TMP/pb.out")"

# 4b. A release that failed in dev has not succeeded there: staging refuses
# it (the coordinator enforces the lifecycle; the refusal is audited).
code=$(post "$ADMIN_TOKEN" "/v1/deployments?env=staging" --data-binary "@$TMP/broken.yaml")
[[ $code == 409 && $(jq -r .error.code "$TMP/out.json") == lifecycle &&
	$(jq -r .error.message "$TMP/out.json") == *"has not succeeded in dev"* ]] ||
	fail "a release that failed in dev, to staging: $code $(cat "$TMP/out.json")"
[[ $(sql "SELECT count(*) FROM audit WHERE status = 409 AND detail LIKE '%refused lifecycle=main release=rel-% environment=staging%'") -ge 1 ]] ||
	fail "the refusal is not audited: $(sql "SELECT status, detail FROM audit WHERE detail LIKE '%lifecycle%'")"
ok "a release that failed in dev is refused by staging (409 lifecycle), and the refusal is audited"

# 5. dev -> staging -> production with the CLI (promote ID --to is the same).
"$CLI" promote-release --wait --json "$DEV" --to staging >"$TMP/staging.json" 2>"$TMP/staging.err" ||
	fail "promote to staging exited $?: $(tail -n 20 "$TMP/staging.err")"
STAGING=$(jq -r .id "$TMP/staging.json")
[[ $(version_on "$STAGE_PORT") == hello-staging ]] || fail "staging /version: $(version_on "$STAGE_PORT")"
"$CLI" promote --wait --json "$STAGING" --to production >"$TMP/prod.json" 2>"$TMP/prod.err" ||
	fail "promote to production exited $?: $(tail -n 20 "$TMP/prod.err")"
PROD=$(jq -r .id "$TMP/prod.json")
[[ $(version_on "$PROD_PORT") == hello-production ]] || fail "production /version: $(version_on "$PROD_PORT")"
for pair in "$STAGING:staging:$DEV" "$PROD:production:$STAGING"; do
	IFS=: read -r id env from <<<"$pair"
	obj=$(curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$DROVER_ADDR/v1/deployments/$id")
	[[ $(jq -r .state <<<"$obj") == succeeded && $(jq -r .release <<<"$obj") == "$REL" &&
		$(jq -r .environment <<<"$obj") == "$env" && $(jq -r .promoted_from <<<"$obj") == "$from" &&
		$(jq -r .vars.PORT <<<"$obj") != "$DEV_PORT" ]] ||
		fail "$env object: $(jq -c '{state, release, environment, promoted_from, vars}' <<<"$obj")"
done
ok "promote-release $DEV --to staging ($STAGING), promote $STAGING --to production ($PROD): release $REL, each with its variables"

# 6. The same bytes: one image digest in the three stored plans and on both hosts.
digests=$(sql "SELECT plan FROM deployments WHERE id IN ('$DEV','$STAGING','$PROD')" |
	jq -r '.tiers[].services[].image' | sort -u)
[[ $(wc -l <<<"$digests") == 1 && $digests == *@sha256:* ]] || fail "images: $digests"
d=${digests#*@}
agents=$(curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$DROVER_ADDR/v1/agents")
for a in stage-1 prod-1; do
	[[ $(jq -r --arg a "$a" '.agents[]? // .[] | select(.id == $a) | .releases[] | select(.service == "alpha") | .digest' <<<"$agents") == "$d" ]] ||
		fail "$a runs $(jq -c --arg a "$a" '.agents[]? // .[] | select(.id == $a) | .releases' <<<"$agents")"
done
ok "one digest ($d) in the three plans and running on stage-1 and prod-1"

# 7. The audit log says who promoted what from where.
row=$(sql "SELECT detail FROM audit WHERE path = '/v1/deployments/$STAGING/promote-release' AND status = 201")
[[ $row == *"deployment=$PROD"*"promoted_from=$STAGING release=$REL from=staging to=production"* ]] ||
	fail "audit: $row"
ok "audit: $row"

# 8. The same release deployed from its file to production: it succeeded in staging, accepted.
code=$(post "$ADMIN_TOKEN" "/v1/deployments?env=production&dry_run=true" --data-binary "@$TMP/v1.yaml")
[[ $code == 200 ]] || fail "dry run: $code $(cat "$TMP/out.json")"
"$CLI" deploy --wait --json --env production "$TMP/v1.yaml" >"$TMP/again.json" 2>"$TMP/again.err" ||
	fail "v1 file to production exited $?: $(tail -n 5 "$TMP/again.err")"
[[ $(jq -r .release "$TMP/again.json") == "$REL" ]] || fail "again: $(jq -c .release "$TMP/again.json")"
ok "the same plan file deployed to production: accepted (release $REL succeeded in staging)"

# 9. An untested release to production: a deployer may not override, an admin may (audited).
code=$(post "$DEPLOYER" "/v1/deployments?env=production&override=hotfix" --data-binary "@$TMP/v2.yaml")
[[ $code == 403 && $(jq -r .error.message "$TMP/out.json") == *"only an admin may override"* ]] ||
	fail "deployer override: $code $(cat "$TMP/out.json")"
code=$(post "$ADMIN_TOKEN" "/v1/deployments?env=production&override=hotfix%20CVE" --data-binary "@$TMP/v2.yaml")
[[ $code == 201 ]] || fail "admin override: $code $(cat "$TMP/out.json")"
HOT=$(jq -r .id "$TMP/out.json")
wait_for 60 dep_state_is "$HOT" succeeded || fail "hotfix: $(dep_get "$HOT" .state)"
row=$(sql "SELECT detail FROM audit WHERE detail LIKE 'deployment=$HOT %'")
[[ $row == *"override lifecycle=main release=rel-"*"reason=hotfix CVE"* ]] || fail "override audit: $row"
ok "an untested release to production: 403 for a deployer's override; an admin's is audited: $row"

# 9b. The lifecycle override is for an admin's deployment of a plan (above)
# only: promote-release from the wrong phase stays refused with an admin's
# ?override (it overrides windows there), and a deployer's refused override
# is audited with its reason.
code=$(post "$ADMIN_TOKEN" "/v1/deployments/$DEV/promote-release?override=skip%20staging" -d '{"to":"production"}')
[[ $code == 409 && $(jq -r .error.code "$TMP/out.json") == lifecycle ]] ||
	fail "promote-release dev -> production with an admin override: $code $(cat "$TMP/out.json")"
row=$(sql "SELECT detail FROM audit WHERE actor = 'ci' AND status = 403 AND detail LIKE '%refused lifecycle=main%'")
[[ -n $row ]] || fail "the deployer's refused override is not audited: $(sql "SELECT actor, status, detail FROM audit WHERE detail LIKE '%lifecycle%'")"
n=$(sql "SELECT count(*) FROM deployments WHERE environment = 'production'")
plan "$TMP/v3.yaml" 3.0.0
code=$(post "$ADMIN_TOKEN" "/v1/deployments?env=production&override=" --data-binary "@$TMP/v3.yaml")
[[ $code == 403 && $(jq -r .error.message "$TMP/out.json") == *"only an admin may override, with a reason"* ]] ||
	fail "an empty override reason: $code $(cat "$TMP/out.json")"
[[ $(sql "SELECT count(*) FROM deployments WHERE environment = 'production'") == "$n" ]] ||
	fail "a refused deployment reached production"
ok "promote-release dev -> production with an admin's ?override: still 409 lifecycle; an empty reason overrides nothing (403); the deployer's refusal is audited ($row)"

# 10. An environment without a variable the release uses.
code=$(post "$ADMIN_TOKEN" "/v1/deployments/$STAGING/promote-release" -d '{"to":"qa"}')
[[ $code == 400 && $(jq -r .error.code "$TMP/out.json") == invalid-plan &&
	$(jq -r .error.message "$TMP/out.json") == *"unknown variable vars.PORT"* ]] ||
	fail "to qa: $code $(cat "$TMP/out.json")"
code=$(post "$ADMIN_TOKEN" "/v1/deployments/nope/promote-release" -d '{"to":"qa"}')
[[ $code == 404 ]] || fail "unknown id: $code"
code=$(post "$ADMIN_TOKEN" "/v1/deployments/$STAGING/promote-release" -d '{}')
[[ $code == 400 ]] || fail "no to: $code"
ok "to qa (no PORT): 400 unknown variable vars.PORT; unknown id 404; no \"to\" 400"
