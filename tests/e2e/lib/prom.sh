# shellcheck shell=bash
# prom.sh: Debian's Prometheus in the control namespace, for the tests and
# the demo that gate on metrics (metrics_gate.sh, dashboard.sh, demo.sh).
#
#   prom_up HOST...      start Prometheus scraping HOST:8080/metrics every
#                        second (label instance=HOST), with the rule files
#                        of PROM_RULES (optional) and alerts sent to
#                        PROM_ALERTMANAGER (HOST:PORT, optional); waits
#                        until it is ready and scrapes every HOST
#   prom_query QUERY     an instant query's JSON answer
#   prom_droverd_conf    the `prometheus` section naming it `main` for
#                        droverd.yaml (printed)
#
# Everything listens on the control namespace's address (network safety:
# docs/e2e.md). Needs lib/e2e.sh.

PROM_PORT=${PROM_PORT:-9090}

prom_query() {
	in_ns control curl -fsS --max-time 5 "http://$(addr_of control):$PROM_PORT/api/v1/query" \
		--data-urlencode "query=$1"
}

prom_droverd_conf() {
	printf 'prometheus:\n  main: { url: "http://%s:%s", timeout: 2s }\n' "$(addr_of control)" "$PROM_PORT"
}

_prom_scraped() {
	[[ $(prom_query 'count(up{job="berrys"} == 1)' | jq -r '.data.result[0].value[1] // 0') == "$1" ]]
}

prom_up() {
	local ctl dir=$E2E_RUN/prometheus h targets="" alerting=""
	ctl=$(addr_of control) || return 1
	mkdir -p "$dir/data"
	for h in "$@"; do
		targets+="      - { targets: [\"$(addr_of "$h"):8080\"], labels: { instance: $h } }"$'\n'
	done
	if [[ -n ${PROM_ALERTMANAGER:-} ]]; then
		alerting="alerting:
  alertmanagers:
    - static_configs: [{ targets: [\"$PROM_ALERTMANAGER\"] }]"
	fi
	cat >"$dir/prometheus.yml" <<EOT
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [${PROM_RULES:+\"$PROM_RULES\"}]
$alerting
scrape_configs:
  - job_name: berrys
    static_configs:
$targets
EOT
	proc_start prometheus control prometheus --config.file="$dir/prometheus.yml" \
		--storage.tsdb.path="$dir/data" --web.listen-address="$ctl:$PROM_PORT" || return 1
	wait_for "prometheus ready" 60 in_ns control curl -fsS -o /dev/null --max-time 2 \
		"http://$ctl:$PROM_PORT/-/ready" || return 1
	wait_for "prometheus scrapes $*" 60 _prom_scraped "$#"
}
