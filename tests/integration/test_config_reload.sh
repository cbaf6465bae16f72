#!/usr/bin/env bash
# test_config_reload.sh: configuration-only releases and feature flags on
# the real droverd, a real drover-agent and a real registry. The service
# says `on_config: reload` and has flags; each release keeps image 1.0.0.
#   - a flag flip is applied without a pull and without a restart: the same
#     pid, the service got SIGHUP (GET /reloads), /drover/flags.json and the
#     step's message say so, nothing was fetched;
#   - a config-only release whose new file makes the service unhealthy is
#     rolled back automatically: the old file is back and the service healthy;
#   - a change of a plain env variable restarts (a process's environment
#     cannot change), flags variables do not.
TEST_NAME=config_reload
source "$(dirname "${BASH_SOURCE[0]}")/deploy_lib.sh"

deploy_setup
PORT=${SVC_PORT[alpha]}
deploy_coord
deploy_agent web-1 tier=web
ok "droverd, agent web-1, registry"

plan() { # FILE VERSION CHECKOUT HEALTH LOG_LEVEL
	cat >"$1" <<EOT
deployment: web
version: "$2"
defaults:
  driver: exec
  strategy: { type: rolling, max_unavailable: 1 }
  stop_grace: 2s
  health: { http: { port: $PORT, path: /health }, interval: 200ms, timeout: 1s,
            healthy_threshold: 2, unhealthy_threshold: 2, deadline: 5s }
  failure: { max_failed_hosts: 0, rollback: deployment }
tiers:
  - name: web
    services:
      - name: alpha
        image: $REG/berrys/berry:1.0.0
        hosts: [web-1]
        on_config: reload
        command: [/bin/berry-svc, --name, alpha, --port, "$PORT", --listen-addr, 127.0.0.1]
        env: { BERRY_HEALTH_FILE: etc/alpha/health, LOG_LEVEL: $5 }
        files: { /etc/alpha/health: "$4" }
        flags: { new_checkout: $3, banner: blue }
EOT
}
get() { curl -s --max-time 2 "http://127.0.0.1:$PORT$1" 2>/dev/null || true; }
root() { dirname "$(dirname "$(dirname "$(find "$TMP/web-1" -path '*/rootfs/drover/flags.json' | head -n 1)")")"; }
deploy() { # FILE NAME -> exit status; object in $TMP/NAME.json
	local rc=0
	"$CLI" deploy --wait --json "$1" >"$TMP/$2.json" 2>"$TMP/$2.err" || rc=$?
	return $rc
}

# 1. v1: flags off.
plan "$TMP/v1.yaml" 1.0.0 false ok info
deploy "$TMP/v1.yaml" v1 || fail "v1 exited $?: $(tail -n 20 "$TMP/v1.err")"
PID=$(svc_pid web-1 alpha)
R=$(root)/rootfs
[[ -n $PID && $(cat "$R/drover/flags.json") == '{"banner":"blue","new_checkout":false}' &&
	$(tr '\0' '\n' <"/proc/$PID/environ" | grep DROVER_FLAG_NEW_CHECKOUT) == DROVER_FLAG_NEW_CHECKOUT=false &&
	$(get /reloads) == 0 ]] ||
	fail "v1: pid $PID, flags $(cat "$R/drover/flags.json"), reloads $(get /reloads)"
ok "v1: pid $PID, /drover/flags.json $(cat "$R/drover/flags.json"), DROVER_FLAG_NEW_CHECKOUT=false"

# 2. v2 flips the flag: same image, only the flag changed.
plan "$TMP/v2.yaml" 1.0.1 true ok info
deploy "$TMP/v2.yaml" v2 || fail "v2 exited $?: $(tail -n 20 "$TMP/v2.err")"
V2=$(jq -r .id "$TMP/v2.json")
[[ $(svc_pid web-1 alpha) == "$PID" && -d /proc/$PID ]] || fail "v2 restarted: pid $(svc_pid web-1 alpha), was $PID"
[[ $(get /reloads) == 1 && $(get /health) == ok ]] || fail "v2: reloads $(get /reloads), health $(get /health)"
[[ $(cat "$R/drover/flags.json") == '{"banner":"blue","new_checkout":true}' ]] || fail "v2 flags: $(cat "$R/drover/flags.json")"
msg=$(sql "SELECT data FROM events WHERE deployment_id = '$V2' AND kind = 'report'" | jq -r '.message' | grep -m1 reloaded || true)
[[ $msg == *"configuration reloaded (SIGHUP, no restart)"* ]] || fail "v2 step message: $(sql "SELECT data FROM events WHERE deployment_id = '$V2' AND kind = 'report'" | tail -n 3)"
grep -q "step=$V2:prestage.*blobs_fetched=[1-9]" "$TMP/web-1.log" && fail "v2 pulled: $(grep "$V2:prestage" "$TMP/web-1.log")"
[[ $(grep -c "msg=\"service started\" instance=alpha" "$TMP/web-1.log") == 1 ]] || fail "started more than once"
ok "v2 (flag flip): same pid $PID, SIGHUP (reloads=1), flags.json new_checkout true, nothing pulled: $msg"

# 3. v3: a config-only release that makes the service unhealthy: rolled back, old file back.
plan "$TMP/v3.yaml" 1.0.2 true fail info
rc=0
deploy "$TMP/v3.yaml" v3 || rc=$?
[[ $rc == 1 && $(jq -r .state "$TMP/v3.json") == rolled_back ]] ||
	fail "v3: exit $rc state $(jq -r .state "$TMP/v3.json") $(tail -n 5 "$TMP/v3.err")"
wait_for 20 test "$(get /health)" = ok || fail "after the rollback: health $(get /health)"
[[ $(cat "$R/etc/alpha/health") == ok && $(cat "$R/drover/flags.json") == '{"banner":"blue","new_checkout":true}' ]] ||
	fail "after the rollback: health file $(cat "$R/etc/alpha/health"), flags $(cat "$R/drover/flags.json")"
running=$(curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$DROVER_ADDR/v1/agents" |
	jq -r '(.agents? // .)[] | select(.id == "web-1") | .releases[] | select(.service == "alpha") | .version')
[[ $running == 1.0.1 ]] || fail "web-1 reports alpha $running"
ok "v3 (health file says fail): rolled back automatically; web-1 runs 1.0.1 again, its files back, healthy"

# 4. A plain env change restarts (with on_config: reload too).
plan "$TMP/v4.yaml" 1.0.3 true ok debug
deploy "$TMP/v4.yaml" v4 || fail "v4 exited $?: $(tail -n 20 "$TMP/v4.err")"
NEW=$(svc_pid web-1 alpha)
[[ -n $NEW && $NEW != "$PID" && $(tr '\0' '\n' <"/proc/$NEW/environ" | grep '^LOG_LEVEL=') == LOG_LEVEL=debug ]] ||
	fail "v4: pid $NEW (was $PID)"
ok "v4 (LOG_LEVEL changed): restarted, pid $NEW, LOG_LEVEL=debug"
