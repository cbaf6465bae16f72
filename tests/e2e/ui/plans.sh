# shellcheck shell=bash
# plans.sh: the fleet and the plans of the operator tests (dashboard.sh,
# approve_ui.sh, cli_deploy.sh, ops_logs.sh), sourced after lib/e2e.sh.
#
#   ops_require TOOL...
#       skip (77) unless root, each TOOL, and this build's droverd,
#       drover-agent and drover
#   ops_require_browser WHAT
#       skip unless chromium, node and playwright-core (PLAYWRIGHT_DIR, which
#       make deps fills) are there: "WHAT NOT tested"
#   ops_up [CMD...]
#       the fleet: core-1..core-3 and ui-1, ui-2 (HOSTS), the registry, the
#       project-coordinator and api-gateway images, droverd (CMD runs between
#       its init and its start: more configuration) and the agents, connected
#
#   ops_plan FILE VERSION START_DELAY_MS CANARY_PAUSE
#       writes a two-tier plan "berrys-ops" at VERSION (v1, v2 or v3, the
#       reference images): tier core, project-coordinator rolling one host at
#       a time on core-1..core-3; tier ui, api-gateway as a canary on ui-1 and
#       ui-2 (steps 50%, 100%; pause CANARY_PAUSE: a duration or manual).
#       START_DELAY_MS slows every start (berry-svc listens that much later),
#       so a deployment is observably running. A fifth argument `baseline`
#       gives api-gateway key metrics (its request rate and p95 latency) on
#       the Prometheus server `main` (lib/prom.sh).

OPS_CORE_HOSTS=(core-1 core-2 core-3)
OPS_UI_HOSTS=(ui-1 ui-2)

ops_require() {
	local b
	e2e_require_root
	e2e_require_tools "$@"
	for b in droverd drover-agent drover; do
		e2e_bin "$b" >/dev/null || skip "$b is not built"
	done
}

# A test never fetches anything itself: make deps installs playwright-core
# (tests/e2e/ui/setup-playwright.sh).
ops_require_browser() {
	[[ -x /usr/bin/chromium ]] ||
		skip "chromium is not installed (Debian package chromium; make deps): $1 NOT tested"
	command -v node >/dev/null ||
		skip "node is not installed (Debian package nodejs; make deps): $1 NOT tested"
	PLAYWRIGHT_DIR=${PLAYWRIGHT_DIR:-${DROVER_TEST_CACHE:-$HOME/.cache/drover-test}/playwright}
	bash "$E2E_DIR/ui/setup-playwright.sh" --check "$PLAYWRIGHT_DIR" ||
		skip "playwright-core is not in $PLAYWRIGHT_DIR (make deps installs it): $1 NOT tested"
}

# shellcheck disable=SC2120 # (CMD is optional)
ops_up() {
	HOSTS=("${OPS_CORE_HOSTS[@]}" "${OPS_UI_HOSTS[@]}")
	net_up "${HOSTS[@]}" || fail "net_up"
	registry_up || fail "registry"
	images_build project-coordinator api-gateway || fail "images_build"
	images_push project-coordinator api-gateway || fail "images_push"
	drover_control_init || fail "droverd init"
	if (($#)); then "$@" || fail "$*"; fi
	drover_control_start || fail "droverd start"
	drover_agents_up "${HOSTS[@]}" || fail "agents did not all connect"
	ok "droverd, registry and ${#HOSTS[@]} agents up"
}

# _ops_join A B C: "A, B, C" (a YAML flow list's items).
_ops_join() {
	local s
	s=$(printf '%s, ' "$@")
	echo "${s%, }"
}

ops_plan() {
	local file=$1 version=$2 delay=$3 pause=$4 pc gw analysis=""
	pc=$(image_ref project-coordinator "$version") || return 1
	gw=$(image_ref api-gateway "$version") || return 1
	[[ ${5:-} == baseline ]] && analysis='
        analysis:
          prometheus:
            server: main
            baseline:
              - name: requests
                query: '"'"'sum(rate(berry_requests_total{service="{{service}}"}[5s]))'"'"'
                unit: req/s
                better: higher
              - name: p95-latency
                query: '"'"'histogram_quantile(0.95, sum by (le) (rate(berry_request_duration_seconds_bucket{service="{{service}}"}[5s]))) * 1000'"'"'
                unit: ms'
	cat >"$file" <<PLAN
# written by tests/e2e/ui/plans.sh
deployment: berrys-ops
version: "$version"
defaults:
  driver: exec
  strategy: { type: rolling, max_unavailable: 1 }
  health:
    http: { port: 8080, path: /health, expect_status: 200-299 }
    interval: 250ms
    timeout: 1s
    healthy_threshold: 2
    unhealthy_threshold: 2
    deadline: 30s
  failure: { max_failed_hosts: 0, rollback: deployment }
tiers:
  - name: core
    services:
      - name: project-coordinator
        image: $pc
        hosts: [$(_ops_join "${OPS_CORE_HOSTS[@]}")]
        command: [/bin/berry-svc, --name, project-coordinator, --port, "8080"]
        env: { BERRY_START_DELAY_MS: "$delay" }
  - name: ui
    services:
      - name: api-gateway
        image: $gw
        hosts: [$(_ops_join "${OPS_UI_HOSTS[@]}")]
        command: [/bin/berry-svc, --name, api-gateway, --port, "8080"]
        env: { BERRY_START_DELAY_MS: "$delay" }
        strategy: { type: canary, steps: [50%, 100%], pause: $pause }$analysis
PLAN
}
