#!/usr/bin/env bash
# test_traffic_trust.sh: nothing a plan says runs a program on the
# coordinator (issue 13, finding 1). Traffic switches are balancers that
# droverd.yaml defines; a plan names one. With a real droverd (started in
# its own directory, next to coordinator.key and admin.token), a real agent
# and a real registry:
#   - a deployer POSTs a canary plan whose traffic hook (no hosts) would run
#     `sh -c "cat coordinator.key admin.token > x"` on the coordinator: 400,
#     naming the field and line and what to write instead; no deployment, no x
#     (on the old code: 201, and the hook ran when the canary step switched);
#   - a plan naming a haproxy socket: 400 at POST and at `drover plan check`;
#   - a plan naming a balancer droverd.yaml does not define: 422;
#   - droverd --check reports a bad balancer with file:line;
#   - a canary through the configured balancer `lb` (kind command) deploys,
#     and the operator's command got the weights.
TEST_NAME=traffic_trust
source "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"

deploy_setup
coord_init
set_opt "$COORD/droverd.yaml" insecure_registry true
cp "$COORD/droverd.yaml" "$TMP/droverd-plain.yaml"

# A bad balancer: droverd --check names file, line and field.
cat >>"$COORD/droverd.yaml" <<EOF
balancers:
  lb: { kind: command, argv: [sh, -c, "true"] }
EOF
line=$(grep -n '^  lb:' "$COORD/droverd.yaml" | cut -d: -f1)
rc=0
"$DROVERD" --config "$COORD/droverd.yaml" --check >"$TMP/check.out" 2>&1 || rc=$?
[[ $rc != 0 ]] || fail "droverd --check accepted a relative balancer command"
grep -q "droverd.yaml:$line: balancers.lb.argv: the command must be an absolute path" "$TMP/check.out" ||
	fail "droverd --check: $(cat "$TMP/check.out")"
ok "droverd --check: a bad balancer is refused with file:line and field"

# The operator's balancer: a command that logs the operation it is given.
cp "$TMP/droverd-plain.yaml" "$COORD/droverd.yaml"
cat >>"$COORD/droverd.yaml" <<EOF
balancers:
  lb:
    kind: command
    argv: [/bin/sh, -c, 'echo "\$@" >>"\$0"', $TMP/lb.calls]
    timeout: 5s
EOF
"$DROVERD" --config "$COORD/droverd.yaml" --check >"$TMP/check.out" 2>&1 ||
	fail "droverd --check refused a good balancer: $(cat "$TMP/check.out")"
cd "$COORD" # droverd's working directory holds coordinator.key and admin.token
coord_start
cd "$TMP"
deploy_agent core-1 tier=core
DEPLOYER=$("$DROVERD" token create --db "$COORD/droverd.db" --role deployer --name ci 2>/dev/null)
[[ $DEPLOYER == drv_* ]] || fail "no deployer token: $DEPLOYER"
ok "droverd with balancer lb (kind command), one agent, a deployer token"

# canary_plan FILE VERSION TRAFFIC: alpha on core-1 as a one-step canary.
canary_plan() {
	cat >"$1" <<EOF
deployment: berrys
version: "$2"
defaults:
  driver: exec
  stop_grace: 2s
  health:
    http: { port: ${SVC_PORT[alpha]}, path: /health }
    interval: 200ms
    timeout: 1s
    healthy_threshold: 2
    deadline: 6s
tiers:
  - name: core
    services:
      - name: alpha
        image: $REG/berrys/berry:$2
        hosts: [core-1]
        command: [/bin/berry-svc, --name, alpha, --port, "${SVC_PORT[alpha]}", --listen-addr, 127.0.0.1]
        strategy:
          type: canary
          steps: [100%]
          pause: 0s
          traffic: $3
EOF
}
post() { # FILE: POST as the deployer; status on stdout, body in $TMP/body
	curl -sS --max-time 30 -o "$TMP/body" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $DEPLOYER" -H 'Content-Type: application/yaml' \
		--data-binary "@$1" "$DROVER_ADDR/v1/deployments?source=plan.yaml"
}
deployments() {
	curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$DROVER_ADDR/v1/deployments" |
		jq '.deployments | length'
}

# 1. The attack: a hook without hosts, run by droverd itself on the old code.
canary_plan "$TMP/steal.yaml" 1.0.0 \
	'{ hook: { run: [sh, -c, "cat coordinator.key admin.token > x"] }, backend: alpha }'
st=$(post "$TMP/steal.yaml")
[[ $st == 400 ]] || fail "the stealing plan got $st, want 400: $(cat "$TMP/body")"
[[ $(jq -r .error.field "$TMP/body") == "tiers[0].services[0].strategy.traffic.hook.hosts" ]] ||
	fail "error field: $(cat "$TMP/body")"
[[ $(jq -r .error.line "$TMP/body") == "$(grep -n 'traffic:' "$TMP/steal.yaml" | cut -d: -f1)" ]] ||
	fail "error line: $(cat "$TMP/body")"
jq -r .error.message "$TMP/body" | grep -q 'traffic: { balancer: NAME, backend: BACKEND }' ||
	fail "the error does not say what to write instead: $(cat "$TMP/body")"
[[ $(deployments) == 0 ]] || fail "a deployment was created"
[[ ! -e $COORD/x && ! -e $TMP/x ]] || fail "the hook ran on the coordinator"
ok "deployer's plan with a coordinator hook: 400 at traffic.hook.hosts (line, what to write), no deployment, nothing ran"

rc=0
"$CLI" plan check "$TMP/steal.yaml" >"$TMP/check.out" 2>&1 || rc=$?
[[ $rc == 2 ]] && grep -q 'strategy.traffic.hook.hosts: required' "$TMP/check.out" ||
	fail "plan check of the stealing plan: exit $rc: $(cat "$TMP/check.out")"
ok "drover plan check refuses it offline too (exit 2)"

# 2. A socket on the coordinator named by the plan.
canary_plan "$TMP/socket.yaml" 1.0.0 '{ haproxy: { socket: /run/docker.sock, backend: alpha } }'
st=$(post "$TMP/socket.yaml")
[[ $st == 400 && $(jq -r .error.field "$TMP/body") == "tiers[0].services[0].strategy.traffic.haproxy.socket" ]] ||
	fail "haproxy socket plan: $st $(cat "$TMP/body")"
jq -r .error.message "$TMP/body" | grep -q 'balancers: { NAME: { kind: haproxy, socket: PATH } }' ||
	fail "no advice: $(cat "$TMP/body")"
ok "plan naming a haproxy socket: 400 at traffic.haproxy.socket, with the droverd.yaml to write"

# 3. A balancer droverd.yaml does not define.
canary_plan "$TMP/unknown.yaml" 1.0.0 '{ balancer: nope, backend: alpha }'
st=$(post "$TMP/unknown.yaml")
[[ $st == 422 && $(jq -r .error.code "$TMP/body") == unknown-balancer &&
	$(jq -r .error.field "$TMP/body") == "tiers[0].services[0].strategy.traffic.balancer" &&
	$(jq -r .error.line "$TMP/body") == "$(grep -n 'traffic:' "$TMP/unknown.yaml" | cut -d: -f1)" ]] ||
	fail "unknown balancer: $st $(cat "$TMP/body")"
[[ $(deployments) == 0 ]] || fail "a deployment was created"
ok "plan naming an undefined balancer: 422 unknown-balancer with field and line"

# 4. The configured balancer does the switch.
canary_plan "$TMP/good.yaml" 1.0.0 '{ balancer: lb, backend: alpha }'
DROVER_TOKEN=$DEPLOYER "$CLI" deploy --wait "$TMP/good.yaml" >"$TMP/good.out" 2>&1 ||
	fail "canary through balancer lb: exit $?: $(tail -n 20 "$TMP/good.out")"
[[ $(svc_version alpha) == 1.0.0 ]] || fail "alpha does not serve 1.0.0"
grep -q '^weights alpha core-1=' "$TMP/lb.calls" || fail "balancer calls: $(cat "$TMP/lb.calls" 2>&1)"
ok "canary through balancer lb: succeeded, the operator's command set the weights ($(head -n 1 "$TMP/lb.calls"))"
