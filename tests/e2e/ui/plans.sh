# shellcheck shell=bash
# plans.sh: the plans of the operator tests (dashboard.sh, cli_deploy.sh),
# sourced after lib/e2e.sh and images_push.
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
