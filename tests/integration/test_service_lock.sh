#!/usr/bin/env bash
# test_service_lock.sh: one deployment per service at a time, across plans,
# with the real droverd, two real drover-agents and a real registry. While
# deployment "berrys" rolls alpha (core-1) and gamma (edge-1) slowly, a
# plan of another name that also deploys alpha on core-1 is refused with
# 409 naming the running deployment; a plan of another name with another
# service on core-1 runs beside it; once berrys has finished, the plan that
# was refused runs.
TEST_NAME=service_lock
source "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"

deploy_setup
deploy_coord
deploy_agent core-1 tier=core
deploy_agent edge-1 tier=edge
ok "registry, droverd and two accepted agents"

SVC_PORT[delta]=$(pick_port "$REG_PORT" "${SVC_PORT[alpha]}" "${SVC_PORT[beta]}" "${SVC_PORT[gamma]}")

# plan NAME DELAY_MS SERVICE HOST [SERVICE HOST]...
plan() {
	local name=$1 delay=$2
	shift 2
	cat <<EOT
deployment: $name
version: "1.0.0"
defaults:
  driver: exec
  strategy: { type: rolling, max_unavailable: 1 }
  stop_grace: 2s
  health: { http: { port: 8080, path: /health }, interval: 200ms, timeout: 1s,
            healthy_threshold: 2, unhealthy_threshold: 2, deadline: 8s }
tiers:
  - name: only
    services:
EOT
	while (($# >= 2)); do
		_svc "$1" "$2" "${SVC_PORT[$1]}" "$delay" 1.0.0
		shift 2
	done
}

post_plan() { # FILE -> prints the status; the body goes to FILE.out
	curl -sS --max-time 30 -o "$1.out" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/yaml' \
		--data-binary "@$1" "$DROVER_ADDR/v1/deployments"
}

plan berrys 3000 alpha core-1 gamma edge-1 >"$TMP/berrys.yaml"
plan other 0 alpha core-1 >"$TMP/other.yaml"
plan side 0 delta core-1 >"$TMP/side.yaml"

code=$(post_plan "$TMP/berrys.yaml")
[[ $code == 201 ]] || fail "berrys: $code $(cat "$TMP/berrys.yaml.out")"
BERRYS=$(jq -r .id "$TMP/berrys.yaml.out")
wait_for 30 dep_state_is "$BERRYS" running || fail "$BERRYS not running: $(dep_get "$BERRYS" '{state,reason}')"

code=$(post_plan "$TMP/other.yaml")
[[ $code == 409 ]] || fail "other while berrys runs: $code $(cat "$TMP/other.yaml.out")"
msg=$(jq -r .error.message "$TMP/other.yaml.out")
[[ $(jq -r .error.code "$TMP/other.yaml.out") == busy && $msg == *"service alpha on core-1"*"$BERRYS (berrys)"* ]] ||
	fail "409 body: $(cat "$TMP/other.yaml.out")"
ok "a plan of another name deploying alpha on core-1 is refused: 409 \"$msg\""

rc=0
"$CLI" deploy "$TMP/other.yaml" >"$TMP/cli-other.out" 2>&1 || rc=$?
[[ $rc != 0 ]] && grep -q "$BERRYS" "$TMP/cli-other.out" ||
	fail "drover deploy other: exit $rc: $(cat "$TMP/cli-other.out")"
ok "drover deploy shows the refusal (exit $rc) naming $BERRYS"

code=$(post_plan "$TMP/side.yaml")
[[ $code == 201 ]] || fail "side (delta on core-1): $code $(cat "$TMP/side.yaml.out")"
SIDE=$(jq -r .id "$TMP/side.yaml.out")
ok "another service on the same host runs beside it ($SIDE)"

wait_for 90 dep_state_is "$BERRYS" succeeded || fail "$BERRYS: $(dep_get "$BERRYS" '{state,reason}')"
wait_for 60 dep_state_is "$SIDE" succeeded || fail "$SIDE: $(dep_get "$SIDE" '{state,reason}')"
code=$(post_plan "$TMP/other.yaml")
[[ $code == 201 ]] || fail "other after berrys: $code $(cat "$TMP/other.yaml.out")"
OTHER=$(jq -r .id "$TMP/other.yaml.out")
wait_for 60 dep_state_is "$OTHER" succeeded || fail "$OTHER: $(dep_get "$OTHER" '{state,reason}')"
ok "after $BERRYS finished the same plan runs: $OTHER succeeded"

[[ $(sql "SELECT count(*) FROM audit WHERE status = 409 AND detail LIKE '%busy=$BERRYS service=alpha agent=core-1%'") -ge 1 ]] ||
	fail "the refusal is not in the audit log: $(sql "SELECT status, detail FROM audit WHERE status = 409")"
ok "the refusal is in the audit log"
