#!/usr/bin/env bash
# dashboard.sh: the web dashboard in headless Chromium against a real droverd
# (CTest e2e_dashboard): droverd, five agents, a registry and the reference
# images in namespaces; a slow two-tier deployment with a manual canary
# pause. ui/dashboard.js (playwright-core driving Debian's chromium, both
# inside the control namespace) checks that /ui loads, shows the agents,
# shows the running deployment's progress from the event stream, that a
# click on pause pauses it (verified through the API), and that resume and
# promote work. This script then checks the audit log names the dashboard's
# token for those clicks.
#
#   sudo bash tests/e2e/dashboard.sh
#
# Exits 77, loudly, without root, chromium, node or playwright-core (all
# installed by make deps).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"
# shellcheck source=ui/plans.sh
source "$E2E_DIR/ui/plans.sh"

ops_require curl jq prometheus
ops_require_browser "the dashboard is"
# prom_conf: the Prometheus server of droverd.yaml (lib/prom.sh).
prom_conf() { prom_droverd_conf >>"$DROVERD_DIR/droverd.yaml"; }
ops_up prom_conf

DEPLOYER=$("$(e2e_bin droverd)" token create --role deployer --name dashboard \
	--config "$DROVERD_DIR/droverd.yaml") || fail "token create"

for p in /ui /ui/; do
	code=$(in_ns control curl -sS -o "$E2E_RUN/ui-page.html" -w '%{http_code}' "$DROVER_ADDR$p")
	[[ $code == 200 ]] && grep -q '<title>drover</title>' "$E2E_RUN/ui-page.html" ||
		fail "GET $p answered $code, not the dashboard"
done
ok "GET /ui and GET /ui/ both serve the dashboard"

mkdir -p "$E2E_RUN/ui"
run_page() { # DEPLOYMENT
	in_ns control env PLAYWRIGHT_DIR="$PLAYWRIGHT_DIR" DROVER_URL="$DROVER_ADDR" \
		DROVER_TOKEN="$DEPLOYER" DEPLOYMENT="$1" AGENTS="${HOSTS[*]}" OUT_DIR="$E2E_RUN/ui" \
		HOME="$E2E_RUN/ui" node "$E2E_DIR/ui/dashboard.js" || {
		cp -f "$E2E_RUN"/ui/dashboard-failure.* "$E2E_BUILD_DIR/" 2>/dev/null || true
		fail "the dashboard checks failed (page saved as $E2E_BUILD_DIR/dashboard-failure.png/.html)"
	}
}
# A baseline release (v1) everywhere, then the slow deployment the page watches.
# Prometheus scrapes api-gateway on ui-1 and ui-2, and a client keeps
# requests coming (bounded: at most 10 minutes): each release records its
# key metrics, and the page shows v2's against v1's.
ops_plan "$E2E_RUN/v0.yaml" v1 0 1s || fail "plan v0"
drover_cli deploy --wait "$E2E_RUN/v0.yaml" >"$E2E_RUN/logs/deploy-v0.log" 2>&1 ||
	fail "v1 without metrics did not deploy: $(tail -n 20 "$E2E_RUN/logs/deploy-v0.log")"
prom_up "${OPS_UI_HOSTS[@]}" || fail "prometheus did not start or does not scrape the ui hosts"
ui_addrs=""
for h in "${OPS_UI_HOSTS[@]}"; do ui_addrs+="$(addr_of "$h") "; done
proc_start traffic control bash -c "for ((i = 0; i < 6000; i++)); do
	for h in $ui_addrs; do curl -s -o /dev/null --max-time 2 http://\$h:8080/; done; sleep 0.1; done"
ok "prometheus scrapes api-gateway on ${OPS_UI_HOSTS[*]}; requests flow"
ops_plan "$E2E_RUN/v1.yaml" v1 0 1s baseline || fail "plan v1"
drover_cli deploy --wait "$E2E_RUN/v1.yaml" >"$E2E_RUN/logs/deploy-v1.log" 2>&1 ||
	fail "v1 did not deploy: $(tail -n 20 "$E2E_RUN/logs/deploy-v1.log")"
grep -q '^baseline api-gateway/requests: [0-9.]* req/s' "$E2E_RUN/logs/deploy-v1.log" ||
	fail "deploy --wait did not end with v1's key metrics: $(tail -n 5 "$E2E_RUN/logs/deploy-v1.log")"
ok "v1 deployed, its key metrics recorded: $(grep '^baseline api-gateway/requests' "$E2E_RUN/logs/deploy-v1.log")"
ops_plan "$E2E_RUN/v2.yaml" v2 5000 manual baseline || fail "plan v2"
DEP=$(drover_cli deploy --json "$E2E_RUN/v2.yaml" | jq -r .id) || fail "deploy v2"
[[ -n $DEP && $DEP != null ]] || fail "no deployment id"
ok "deployment $DEP (v2, slow, manual canary) started"

run_page "$DEP"

state=$(drover_cli status --json "$DEP" | jq -r .state)
[[ $state == succeeded ]] || fail "after the clicks the deployment is $state, not succeeded"
for verb in pause resume promote; do
	n=$(drover_cli audit --json --limit 200 | jq --arg p "/v1/deployments/$DEP/$verb" \
		'[.[] | select(.path == $p and .actor == "dashboard" and .status == 200)] | length')
	[[ $n -ge 1 ]] || fail "the audit log has no $verb by the dashboard's token"
done
ok "the audit log records pause, resume and promote by the dashboard's token"
