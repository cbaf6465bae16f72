#!/usr/bin/env bash
# metrics_gate.sh (CTest e2e_metrics_gate): Prometheus analysis with real
# parts. The reference system runs release 1; Prometheus (Debian's) runs in
# the control namespace and scrapes api-gateway's /metrics on ui-1 and ui-2
# every second; a client sends requests through HAProxy the whole time.
# droverd.yaml names the server (`prometheus: { main: ... }`).
#
#   bad-query   a plan whose query Prometheus refuses (HTTP 400) is refused
#               at submission with the field and Prometheus' message
#   error-rate  api-gateway release 2 fails 50 % of its requests; at the
#               canary's 50 % step the error-rate check fails twice in a row:
#               the deployment rolls back, ui-1 runs release 1 again, the
#               verdicts are events and `drover status` shows them
#   alert       no analysis, but rollback_on_alerts: a Prometheus rule fires
#               HighErrorRate, Alertmanager (Debian's) posts it to droverd's
#               POST /v1/alerts with a token of the alerts role: the canary
#               is rolled back by the alert. Then, with Alertmanager's
#               documented payload posted by curl: alert_precheck refuses a
#               deployment while a matching alert fires (409) and accepts it
#               once the alert is resolved; a malformed payload is 400 and
#               audited; the alerts token can do nothing else (403)
#   bake        the canary passes every step; during its bake (60s after the
#               last tier) the error rate of both ui hosts rises: the
#               deployment, done with its tiers, is rolled back
#   baseline    release 2.0.0 of api-gateway (20 ms a request) records its
#               key metrics (p95 latency, request rate) when it succeeds:
#               GET /v1/deployments/ID/baseline and the completion webhook
#               carry them. Release 2.1.0 (200 ms) is compared with them
#               during its bake: p95 more than 20 % worse, rolled back;
#               `drover status` shows "(2.0.0: N ms, +M %)"
#   unreachable Prometheus stopped: the check's on_error (inconclusive)
#               holds the canary for the operator; `drover rollback` ends it
#
#   sudo bash tests/e2e/metrics_gate.sh
set -euo pipefail
# Images of our own: the shared cache is rebuilt by runs of other trees whose
# berry-svc may not have /metrics yet.
export E2E_IMAGE_CACHE=${E2E_IMAGE_CACHE:-${DROVER_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drover-test}/e2e-images-metrics}
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

ref_require
e2e_require_tools prometheus
ref_up

AM_PORT=9093
HOOK_PORT=9099
ERR_QUERY='sum(rate(berry_requests_total{service="{{service}}",code="500",instance=~"{{hosts}}"}[10s])) / sum(rate(berry_requests_total{service="{{service}}",instance=~"{{hosts}}"}[10s]))'

# Prometheus (lib/prom.sh) evaluates one alerting rule and sends to Alertmanager.
prom_rules() {
	mkdir -p "$E2E_RUN/prometheus"
	cat >"$E2E_RUN/prometheus/rules.yml" <<'EOT'
groups:
  - name: berrys
    interval: 1s
    rules:
      - alert: HighErrorRate
        expr: sum by (service) (rate(berry_requests_total{code="500"}[10s])) / sum by (service) (rate(berry_requests_total[10s])) > 0.1
EOT
	PROM_RULES=$E2E_RUN/prometheus/rules.yml
	PROM_ALERTMANAGER=$(addr_of control):$AM_PORT
}

# Alertmanager posts to droverd with a token that may only post alerts.
am_up() {
	local ctl dir=$E2E_RUN/alertmanager
	ctl=$(addr_of control)
	mkdir -p "$dir/data"
	"$(e2e_bin droverd)" token create --role alerts --name alertmanager \
		--config "$DROVERD_DIR/droverd.yaml" >"$dir/token" || return 1
	chmod 600 "$dir/token"
	cat >"$dir/alertmanager.yml" <<EOT
route:
  receiver: drover
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1m
receivers:
  - name: drover
    webhook_configs:
      - url: $DROVER_ADDR/v1/alerts
        send_resolved: true
        http_config: { authorization: { type: Bearer, credentials_file: $dir/token } }
EOT
	proc_start alertmanager control prometheus-alertmanager --config.file="$dir/alertmanager.yml" \
		--storage.path="$dir/data" --web.listen-address="$ctl:$AM_PORT" \
		--cluster.listen-address= || return 1
	wait_for "alertmanager ready" 60 in_ns control curl -fsS -o /dev/null --max-time 2 \
		"http://$ctl:$AM_PORT/-/ready"
}

# post_alerts STATUS [CURL ARGS]: Alertmanager's documented webhook payload
# (version 4) for HighErrorRate of api-gateway, as the alerts token; prints
# the HTTP status.
post_alerts() {
	local st=$1
	shift
	in_ns control curl -s -o "$E2E_RUN/alerts.out" -w '%{http_code}' --max-time 10 \
		-H "Authorization: Bearer $(cat "$E2E_RUN/alertmanager/token")" \
		-H 'Content-Type: application/json' "$@" "$DROVER_ADDR/v1/alerts" --data-binary @- <<EOT
{"version": "4", "groupKey": "{}:{alertname=\"HighErrorRate\"}", "truncatedAlerts": 0,
 "status": "$st", "receiver": "drover",
 "groupLabels": {"alertname": "HighErrorRate"},
 "commonLabels": {"alertname": "HighErrorRate", "service": "api-gateway"},
 "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
 "alerts": [{"status": "$st", "labels": {"alertname": "HighErrorRate", "service": "api-gateway"},
   "annotations": {"summary": "e2e"}, "startsAt": "2026-12-01T00:00:00Z",
   "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "e2e00precheck00"}]}
EOT
}
_no_high_error_alert() {
	[[ $(prom_query 'count(ALERTS{alertname="HighErrorRate",alertstate="firing"})' |
		jq -r '.data.result | length') == 0 ]]
}

# droverd.yaml names the server, and allows the webhook receiver
# (outbound.allow); droverd reads both at start.
prom_droverd_conf >>"$DROVERD_DIR/droverd.yaml"
sed -i -E "s|^( *)allow:.*|\1allow: [\"http://$(addr_of control):8000/\", \"http://$(addr_of control):$HOOK_PORT/\"]|" \
	"$DROVERD_DIR/droverd.yaml"
proc_stop droverd
drover_control_start || fail "droverd did not restart with the prometheus section"
drover_wait_agents connected 30 "${REF_HOSTS[@]}" || fail "agents did not come back"
am_up || fail "alertmanager did not start"
prom_rules
prom_up ui-1 ui-2 || fail "prometheus did not start or does not scrape ui-1 and ui-2"
ok "prometheus scrapes api-gateway on ui-1 and ui-2; droverd names it main"

# Requests through HAProxy all along (bounded: at most 20 minutes).
proc_start traffic control bash -c "for ((i = 0; i < 24000; i++)); do
	curl -s -o /dev/null --max-time 2 http://$(addr_of control):8000/; sleep 0.05; done"

if scenario bad-query "a query Prometheus refuses is a plan error"; then
	plan_render metrics-canary.yaml "$E2E_RUN/bad.yaml" ERROR_RATE=0 ON_ERROR=fail BAKE=0s \
		"QUERY=sum(rate(berry_requests_total[1m]" || fail "plan"
	if out=$(drover_cli deploy "$E2E_RUN/bad.yaml" 2>&1); then
		fail "a plan with a broken query was accepted: $out"
	fi
	grep -q 'analysis.prometheus.checks\[0\].query' <<<"$out" || fail "no field in: $out"
	grep -q 'refused the query' <<<"$out" || fail "no prometheus message in: $out"
	ok "broken query refused at submission: $(grep -m1 -o 'prometheus main refused.*' <<<"$out" | cut -c1-100)"
fi

if scenario error-rate "a canary whose error rate rises is rolled back by its analysis"; then
	plan_render metrics-canary.yaml "$E2E_RUN/err.yaml" ERROR_RATE=0.5 ON_ERROR=fail BAKE=0s \
		"QUERY=$ERR_QUERY" || fail "plan"
	id=$(dep_submit "$E2E_RUN/err.yaml") || fail "submit"
	st=$(dep_wait_final "$id" 180) || fail "deployment did not end: $(dep_state "$id")"
	[[ $st == rolled_back ]] || fail "deployment ended $st, not rolled_back: $(dep_get "$id" | jq -r .reason)"
	reason=$(dep_get "$id" | jq -r .reason)
	grep -q 'analysis check error-rate failed 2 time(s) in a row' <<<"$reason" ||
		fail "reason: $reason"
	ok "rolled back by its analysis: $reason"
	[[ $(host_version ui-1 8080) == v1 && $(host_version ui-2 8080) == v1 ]] ||
		fail "after the rollback: ui-1 $(host_version ui-1 8080), ui-2 $(host_version ui-2 8080)"
	ok "ui-1 and ui-2 run release 1 again"
	v=$(dep_get "$id" | jq -r '.analysis[] | select(.check == "error-rate") | "\(.verdict) \(.value)"')
	[[ $v == fail* ]] || fail "latest verdict in the deployment: '$v'"
	# The check runs during the step's pause too: it may see the rate on its
	# way up (its 10 s window partly before the new release), over 0.1 anyway.
	awk '{exit !($2 > 0.1 && $2 <= 0.7)}' <<<"$v" || fail "error rate seen: $v"
	ok "the deployment records the verdict: $v"
	status=$(drover_cli status "$id") || true
	grep -qE '^api-gateway +error-rate +fail +0\.[0-9]+ \(1 series\), want < 0\.1' <<<"$status" ||
		fail "drover status shows no ANALYSIS row: $status"
	ok "drover status: $(grep -E '^api-gateway +error-rate' <<<"$status" | tr -s ' ')"
fi

if scenario alert "an alert fired by Prometheus through Alertmanager rolls a canary back"; then
	wait_for "no HighErrorRate firing" 90 _no_high_error_alert || fail "HighErrorRate still fires"
	plan_render metrics-alert.yaml "$E2E_RUN/alert.yaml" ERROR_RATE=0.5 || fail "plan"
	id=$(dep_submit "$E2E_RUN/alert.yaml") || fail "submit"
	st=$(dep_wait_final "$id" 180) || fail "deployment did not end: $(dep_state "$id")"
	reason=$(dep_get "$id" | jq -r .reason)
	[[ $st == rolled_back ]] || fail "ended $st: $reason"
	grep -q 'alert HighErrorRate fired' <<<"$reason" || fail "reason: $reason"
	[[ $(host_version ui-1 8080) == v1 ]] || fail "ui-1 runs $(host_version ui-1 8080)"
	ok "rolled back by the alert Prometheus fired and Alertmanager posted: $reason"

	wait_for "no HighErrorRate firing" 90 _no_high_error_alert || fail "HighErrorRate still fires"
	[[ $(post_alerts firing) == 200 ]] || fail "posting a firing alert: $(cat "$E2E_RUN/alerts.out")"
	plan_render metrics-alert.yaml "$E2E_RUN/pre.yaml" ERROR_RATE=0 || fail "plan"
	out=$(drover_cli deploy "$E2E_RUN/pre.yaml" 2>&1) && fail "started while the alert fires: $out"
	grep -q 'alert HighErrorRate fires for api-gateway' <<<"$out" || fail "refusal: $out"
	ok "alert_precheck: refused while HighErrorRate fires ($(grep -o 'alerts-firing' <<<"$out" | head -1))"
	[[ $(post_alerts resolved) == 200 ]] || fail "posting the resolved alert"
	id=$(dep_submit "$E2E_RUN/pre.yaml") || fail "not accepted once resolved"
	drover_cli rollback "$id" >/dev/null 2>&1 || true
	st=$(dep_wait_final "$id" 120) || fail "did not end"
	ok "accepted once the alert was resolved (then rolled back by the operator: $st)"

	code=$(in_ns control curl -s -o "$E2E_RUN/alerts.out" -w '%{http_code}' --max-time 5 \
		-H "Authorization: Bearer $(cat "$E2E_RUN/alertmanager/token")" \
		--data-binary '{"alerts": [{"status": "maybe", "labels": {}}]}' "$DROVER_ADDR/v1/alerts")
	[[ $code == 400 ]] || fail "a malformed payload was not refused: $code $(cat "$E2E_RUN/alerts.out")"
	audit=$(drover_api GET "/v1/audit?limit=50" | jq -c '[.entries[] | select(.path == "/v1/alerts" and .status == 400)] | length')
	((audit >= 1)) || fail "the refused payload is not in the audit log"
	code=$(in_ns control curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
		-H "Authorization: Bearer $(cat "$E2E_RUN/alertmanager/token")" "$DROVER_ADDR/v1/deployments")
	[[ $code == 403 ]] || fail "the alerts token read deployments: $code"
	ok "malformed payload: 400 and audited; the alerts token cannot read deployments (403)"
fi

_baking() { [[ $(dep_get "$1" | jq -r '.bake_until_ms // empty') != "" ]]; }
if scenario bake "the error rate rises during the bake: rolled back"; then
	plan_render metrics-canary.yaml "$E2E_RUN/bake.yaml" ERROR_RATE=0 ON_ERROR=fail BAKE=60s \
		"QUERY=$ERR_QUERY" || fail "plan"
	id=$(dep_submit "$E2E_RUN/bake.yaml") || fail "submit"
	wait_for "the bake begins" 120 _baking "$id" || fail "no bake: $(dep_state "$id")"
	[[ $(host_version ui-1 8080) == v2 && $(host_version ui-2 8080) == v2 ]] ||
		fail "baking, but ui-1 $(host_version ui-1 8080), ui-2 $(host_version ui-2 8080)"
	ok "every step passed; baking with both ui hosts on release 2"
	for h in ui-1 ui-2; do
		in_ns control curl -fsS -o /dev/null --max-time 5 "http://$(addr_of "$h"):8080/error_rate?set=0.5" ||
			fail "cannot raise the error rate on $h"
	done
	st=$(dep_wait_final "$id" 120) || fail "did not end: $(dep_state "$id")"
	reason=$(dep_get "$id" | jq -r .reason)
	[[ $st == rolled_back ]] || fail "ended $st: $reason"
	grep -q 'analysis check error-rate failed' <<<"$reason" || fail "reason: $reason"
	[[ $(host_version ui-1 8080) == v1 && $(host_version ui-2 8080) == v1 ]] || fail "not back on v1"
	ok "rolled back during the bake: $reason"
fi

# A webhook receiver in the control namespace: one JSON body a line.
hook_up() {
	proc_start webhooks control python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(min(n, 1 << 20)).replace(b"\n", b" ")
        with open(sys.argv[1], "ab") as f:
            f.write(body + b"\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer((sys.argv[2], int(sys.argv[3])), H).serve_forever()
' "$E2E_RUN/webhooks.jsonl" "$(addr_of control)" "$HOOK_PORT"
}
_hooked() { grep -q "\"$1\"" "$E2E_RUN/webhooks.jsonl" 2>/dev/null; }
if scenario baseline "a release's key metrics are its baseline; the next release is compared with it"; then
	hook_up || fail "webhook receiver"
	plan_render metrics-baseline.yaml "$E2E_RUN/base2.yaml" VERSION=2.0.0 LATENCY=20 \
		"HOOK_PORT=$HOOK_PORT" || fail "plan"
	id2=$(dep_submit "$E2E_RUN/base2.yaml") || fail "submit 2.0.0"
	st=$(dep_wait_final "$id2" 120) || fail "2.0.0 did not end: $(dep_state "$id2")"
	[[ $st == succeeded ]] || fail "2.0.0 ended $st: $(dep_get "$id2" | jq -r .reason)"
	b=$(drover_api GET "/v1/deployments/$id2/baseline")
	[[ $(jq -r .recorded <<<"$b") == true ]] || fail "2.0.0's baseline not recorded: $b"
	p95=$(jq -r '.metrics[] | select(.metric == "p95-latency") | .value' <<<"$b")
	awk -v v="$p95" 'BEGIN {exit !(v >= 10 && v <= 50)}' || fail "2.0.0 p95 $p95 ms, want 10..50: $b"
	rps=$(jq -r '.metrics[] | select(.metric == "requests") | .value' <<<"$b")
	awk -v v="$rps" 'BEGIN {exit !(v > 0)}' || fail "2.0.0 request rate $rps: $b"
	ok "2.0.0 recorded its baseline: p95 $p95 ms, $rps req/s"
	wait_for "the succeeded webhook" 30 _hooked succeeded || fail "no succeeded webhook"
	w=$(grep '"succeeded"' "$E2E_RUN/webhooks.jsonl" | tail -1)
	[[ $(jq -r '[.baseline[] | select(.metric == "p95-latency")][0].value' <<<"$w") == "$p95" ]] ||
		fail "the webhook does not carry the figures: $w"
	ok "the succeeded webhook carries the figures"

	plan_render metrics-baseline.yaml "$E2E_RUN/base3.yaml" VERSION=2.1.0 LATENCY=200 \
		"HOOK_PORT=$HOOK_PORT" || fail "plan"
	id3=$(dep_submit "$E2E_RUN/base3.yaml") || fail "submit 2.1.0"
	st=$(dep_wait_final "$id3" 120) || fail "2.1.0 did not end: $(dep_state "$id3")"
	reason=$(dep_get "$id3" | jq -r .reason)
	[[ $st == rolled_back ]] || fail "2.1.0 ended $st: $reason"
	grep -q 'analysis check p95-latency failed 1 time(s) in a row: .* ms (2.0.0: .* ms, +[0-9]* %), a regression over 20 %' <<<"$reason" ||
		fail "reason: $reason"
	ok "2.1.0 rolled back by its p95 against 2.0.0's: $reason"
	b=$(drover_api GET "/v1/deployments/$id3/baseline")
	[[ $(jq -r .recorded <<<"$b") == false ]] || fail "a rolled back release recorded a baseline: $b"
	[[ $(jq -r '.metrics[] | select(.metric == "p95-latency") | .previous.version' <<<"$b") == 2.0.0 ]] ||
		fail "2.1.0 is not compared with 2.0.0: $b"
	status=$(drover_cli status "$id3") || true
	grep -qE '^api-gateway +p95-latency +fail +[0-9.]+ ms \(2\.0\.0: [0-9.]+ ms, \+[0-9]+ %\), a regression over 20 %' <<<"$status" ||
		fail "drover status shows no comparison: $status"
	ok "drover status: $(grep -E '^api-gateway +p95-latency' <<<"$status" | tr -s ' ')"
	wait_for "the rolled_back webhook" 30 _hooked rolled_back || fail "no rolled_back webhook"
	proc_stop webhooks || true
fi

if scenario unreachable "Prometheus unreachable: inconclusive holds the canary"; then
	was=$(host_version ui-1 8080) # v1, or v2 after the baseline scenario's 2.0.0
	proc_stop prometheus
	plan_render metrics-canary.yaml "$E2E_RUN/unreach.yaml" ERROR_RATE=0 ON_ERROR=inconclusive BAKE=0s \
		"QUERY=$ERR_QUERY" || fail "plan"
	id=$(dep_submit "$E2E_RUN/unreach.yaml") || fail "submit (server unreachable is no plan error)"
	dep_wait_state "$id" 90 awaiting_promotion || fail "not held: $(dep_state "$id")"
	v=$(dep_get "$id" | jq -r '.analysis[0] | "\(.verdict): \(.text)"')
	[[ $v == inconclusive* ]] || fail "verdict: $v"
	ok "held for the operator: $v"
	sleep 3
	[[ $(dep_state "$id") == awaiting_promotion ]] || fail "did not stay held: $(dep_state "$id")"
	drover_cli rollback "$id" >/dev/null || fail "rollback"
	st=$(dep_wait_final "$id" 90) || fail "did not end"
	[[ $st == rolled_back ]] || fail "ended $st"
	[[ $(host_version ui-1 8080) == "$was" ]] || fail "ui-1 runs $(host_version ui-1 8080), not $was"
	ok "drover rollback ended it: rolled_back, ui-1 on its release before ($was)"
fi
proc_stop traffic || true
echo "metrics_gate: $E2E_PASSED checks passed"
