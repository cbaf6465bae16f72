#!/usr/bin/env bash
# demo.sh: `make demo`. The runbook's deployment on seven namespaced hosts:
# release 1 of the eight services (all rolling), release 2 (rolling core and
# supporting tiers, a canary api-gateway behind HAProxy weights, a
# blue-green web-dashboard switched in HAProxy, database backup and
# migration on db-1), release 3 (a bad release: its health checks fail and
# drover rolls it back on its own), release 4 (healthy, but failing 30 % of
# its requests: an error-rate check on Prometheus rolls it back during its
# canary's pause; release 2 recorded its key metrics as its baseline). Each
# with `drover deploy --wait`, then a summary per tier, service and host.
# With DEMO_SYSTEMD=1 (make demo-systemd) a booted machine (systemd as PID 1)
# joins and runs one service with `driver: systemd` (demo_systemd; about a
# minute more). Everything it starts is stopped on exit, also on Ctrl-C;
# `make demo-down` cleans up after a kill -9.
#
#   sudo bash tests/e2e/demo.sh          (after a build; make demo does both)
#
# Exit: 0 when every release ended as expected (1 and 2 succeeded, 3 and 4
# rolled back) and every host runs release 2; 1 otherwise.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

DEMO_T0=$(e2e_now_ms)
DEMO_IDS=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
[[ -t 1 ]] || say() { printf '\n== %s\n' "$*"; }

secs() { awk -v ms="$1" 'BEGIN { printf "%.1f s", ms / 1000 }'; }

# demo_release N EXPECT [EDIT]: deploy release N, as an operator would
# (EDIT: a function that changes the rendered plan first).
demo_release() {
	local n=$1 want=$2 plan=$E2E_RUN/berrys-v$1.yaml rc=0 id st t0
	plan_render "berrys-v$n.yaml" "$plan" || fail "plan for release $n"
	[[ -z ${3:-} ]] || "$3" "$plan" || fail "plan for release $n: $3"
	t0=$(e2e_now_ms)
	echo "\$ drover deploy berrys-v$n.yaml --wait"
	in_ns control env DROVER_ADDR="$DROVER_ADDR" DROVER_TOKEN_FILE="$DROVER_TOKEN_FILE" \
		"$(e2e_bin drover)" deploy "$plan" --wait | tee "$E2E_RUN/deploy-v$n.out" || rc=${PIPESTATUS[0]}
	id=$(drover_api GET "/v1/deployments?limit=1" | jq -r '.deployments[0].id // empty')
	[[ -n $id ]] || fail "no deployment after release $n"
	DEMO_IDS+=("$id")
	st=$(dep_state "$id")
	echo "-- $id: $st after $(secs $(($(e2e_now_ms) - t0))), drover exited $rc"
	[[ $st == "$want" ]] || fail "release $n ended $st ($(dep_get "$id" | jq -r .reason)); expected $want"
	case $want in
	succeeded) ((rc == 0)) || fail "drover deploy --wait exited $rc on success" ;;
	*) ((rc == 1)) || fail "drover deploy --wait exited $rc on $want (expected 1)" ;;
	esac
}

# web_load_start: requests to web-dashboard through HAProxy from the control
# host, back to back (20 per curl, each on a new connection so that HAProxy
# balances each), each answer's status on a line of $E2E_RUN/web-load.codes.
# web_load_check: stop it (a file it looks for); every answer was a 2xx (a
# weight move waits until HAProxy sees the servers that gain traffic UP,
# docs/traffic.md: a blue-green switch to a slot HAProxy still held DOWN
# answered 503s).
web_load_start() {
	local url i urls=()
	url="http://$(addr_of control):8001/version"
	for i in {1..20}; do urls+=(-o /dev/null "$url"); done
	rm -f "$E2E_RUN/web-load.stop" "$E2E_RUN/web-load.codes"
	proc_start web-load control bash -c 'stop=$1 out=$2; shift 2
		while [[ ! -e $stop ]]; do
			curl -s -H "Connection: close" --max-time 2 -w "%{http_code}\n" "$@" >>"$out"
		done' web-load "$E2E_RUN/web-load.stop" "$E2E_RUN/web-load.codes" "${urls[@]}" ||
		fail "web-load"
}

web_load_check() {
	local codes=$E2E_RUN/web-load.codes n bad
	touch "$E2E_RUN/web-load.stop"
	proc_wait_gone web-load 10 || proc_stop web-load
	n=$(grep -c . "$codes" || true)
	bad=$(grep -cv '^2[0-9][0-9]$' "$codes" || true)
	echo "-- web-dashboard through HAProxy during release 2: $n requests, $bad not 2xx"
	((n >= 100)) || fail "web-load: only $n requests were made"
	((bad == 0)) || fail "web-load: $bad of $n requests were not 2xx: $(sort "$codes" | uniq -c | tr -s ' \n' ' ')"
}

# demo_dry_run N: what release N would do, before it does it (exit 1:
# something would change), and proof that nothing changed.
demo_dry_run() {
	local n=$1 plan=$E2E_RUN/berrys-v$1.yaml rc=0 out=$E2E_RUN/dry-run-v$1.out before
	plan_render "berrys-v$n.yaml" "$plan" || fail "plan for release $n"
	before=$(drover_api GET "/v1/deployments?limit=1" | jq -r '.deployments[0].id // empty')
	echo "\$ drover deploy --dry-run berrys-v$n.yaml"
	in_ns control env DROVER_ADDR="$DROVER_ADDR" DROVER_TOKEN_FILE="$DROVER_TOKEN_FILE" \
		"$(e2e_bin drover)" deploy --dry-run "$plan" | tee "$out" || rc=${PIPESTATUS[0]}
	((rc == 1)) || fail "drover deploy --dry-run exited $rc (expected 1: changes)"
	[[ $(drover_api GET "/v1/deployments?limit=1" | jq -r '.deployments[0].id // empty') == "$before" ]] ||
		fail "the dry run created a deployment"
	assert_fleet v1
	grep -qE '^      core-1  1\.0\.0 -> 2\.0\.0$' "$out" || fail "dry run: no core-1 1.0.0 -> 2.0.0"
	grep -qE '^      step 1/5 10%: ui-1; traffic 10% to the new release' "$out" || fail "dry run: no canary step 1"
	grep -q 'switch traffic to green' "$out" || fail "dry run: no blue-green switch"
	grep -qE '^  0042-add-plans-table on db-1' "$out" || fail "dry run: no migration on db-1"
	ok "dry run of release $n: per-host releases, batches, canary steps, switch, migration; nothing changed"
}

# drift_has HOST SERVICE KIND: drover drift lists it.
drift_has() {
	drover_api GET /v1/drift | jq -e --arg h "$1" --arg s "$2" --arg k "$3" \
		'[.hosts[] | select(.host == $h and .service == $s and .kind == $k)] | length > 0' >/dev/null
}

# demo_drift: kill agent-orchestrator on core-2 by hand (its agent restarts
# it), watch drover drift report it, converge it, and see the drift gone.
demo_drift() {
	local pidf=$E2E_RUN/agents/core-2/state/run/agent-orchestrator.pid pid rc=0 out
	echo "\$ drover drift"
	drover_cli drift || rc=$?
	((rc == 0)) || fail "drift before anything was touched (exit $rc)"
	read -r pid _ <"$pidf" || fail "no pid file $pidf"
	echo "\$ kill -9 $pid    # agent-orchestrator on core-2, by hand"
	kill -9 "$pid"
	wait_for "drover drift sees core-2's agent-orchestrator restarted" 30 \
		drift_has core-2 agent-orchestrator restarted || fail "no drift after the kill"
	echo "\$ drover drift"
	rc=0
	drover_cli drift | tee "$E2E_RUN/drift.out" || rc=${PIPESTATUS[0]}
	((rc == 1)) || fail "drover drift exited $rc with drift (expected 1)"
	grep -qE '^core-2 +agent-orchestrator +restarted ' "$E2E_RUN/drift.out" || fail "drift table"
	[[ $(metric drover_drift_hosts) == 1 ]] || fail "drover_drift_hosts is $(metric drover_drift_hosts), not 1"
	echo "\$ drover converge agent-orchestrator"
	out=$E2E_RUN/converge.out
	drover_cli converge agent-orchestrator | tee "$out" || fail "drover converge failed"
	grep -qE '^converging: dep-' "$out" || fail "converge printed no deployment"
	echo "\$ drover drift"
	rc=0
	drover_cli drift || rc=$?
	((rc == 0)) || fail "drift left after converge (exit $rc)"
	[[ $(metric drover_drift_hosts) == 0 ]] || fail "drover_drift_hosts is not 0 after converge"
	ok "drift: the kill is seen (restarted, drover_drift_hosts 1), converge re-applies release 2, no drift left"
}

# ---- decisions from metrics (issue 15): Prometheus scrapes api-gateway;
# release 2 records its key metrics as its baseline; release 4 is rolled
# back by an error-rate check during its canary's pause, its health checks
# all passing. Only the functions below and three calls in the script.

# api-gateway's key metrics (the baseline of each release), as plan YAML.
DEMO_BASELINE='              - name: requests
                query: '"'"'sum(rate(berry_requests_total{service="{{service}}"}[4s]))'"'"'
                unit: req/s
                better: higher
              - name: error-rate
                query: '"'"'sum(rate(berry_requests_total{service="{{service}}",code="500"}[4s])) / sum(rate(berry_requests_total{service="{{service}}"}[4s]))'"'"'
                regression: 50%
              - name: p95-latency
                query: '"'"'histogram_quantile(0.95, sum by (le) (rate(berry_request_duration_seconds_bucket{service="{{service}}"}[4s]))) * 1000'"'"'
                unit: ms'

# demo_metrics_up: Prometheus (lib/prom.sh) and requests through HAProxy all
# along (bounded: at most 10 minutes); droverd.yaml names the server (it was
# written before droverd started: E2E_DROVERD_EXTRA).
demo_metrics_up() {
	prom_up ui-1 ui-2 || fail "prometheus did not start or does not scrape ui-1 and ui-2"
	proc_start traffic control bash -c "for ((i = 0; i < 12000; i++)); do
		curl -s -o /dev/null --max-time 2 http://$(addr_of control):8000/; sleep 0.05; done"
	echo "   Prometheus scrapes api-gateway on ui-1 and ui-2 every second; a client sends requests through HAProxy"
}

# demo_add_baseline PLAN: api-gateway of the rendered release 2 names its key metrics.
demo_add_baseline() {
	local block
	block="        analysis:
          prometheus:
            server: main
            baseline:
$DEMO_BASELINE"
	awk -v block="$block" '{ print } /backend: api-gateway }/ && !done { print block; done = 1 }' \
		"$1" >"$1.new" && mv "$1.new" "$1"
	grep -q 'name: p95-latency' "$1"
}

# demo_metric_release: release 4, rolled back by a metric.
demo_metric_release() {
	local plan=$E2E_RUN/berrys-v4.yaml rc=0 id st t0 reason
	plan_render berrys-v4-metric.yaml "$plan" ERROR_RATE=0.3 BASELINE=__BASELINE__ || fail "plan for release 4"
	awk -v block="$DEMO_BASELINE" '$0 == "__BASELINE__" { print block; next } { print }' \
		"$plan" >"$plan.new" && mv "$plan.new" "$plan"
	t0=$(e2e_now_ms)
	echo "\$ drover deploy berrys-v4.yaml --wait"
	in_ns control env DROVER_ADDR="$DROVER_ADDR" DROVER_TOKEN_FILE="$DROVER_TOKEN_FILE" \
		"$(e2e_bin drover)" deploy "$plan" --wait | tee "$E2E_RUN/deploy-v4.out" || rc=${PIPESTATUS[0]}
	id=$(drover_api GET "/v1/deployments?limit=1" | jq -r '.deployments[0].id // empty')
	DEMO_IDS+=("$id")
	st=$(dep_state "$id")
	reason=$(dep_get "$id" | jq -r .reason)
	echo "-- $id: $st after $(secs $(($(e2e_now_ms) - t0))), drover exited $rc"
	[[ $st == rolled_back ]] || fail "release 4 ended $st ($reason); expected rolled_back"
	((rc == 1)) || fail "drover deploy --wait exited $rc on rolled_back (expected 1)"
	[[ $reason == *"analysis check error-rate failed 2 time(s) in a row"* ]] ||
		fail "release 4 was not rolled back by its error rate: $reason"
	[[ $(dep_get "$id" | jq '[.tiers[].services[].hosts[] | select(.state == "failed")] | length') == 0 ]] ||
		fail "a host of release 4 failed its health checks: the metric was not what decided"
	[[ $(in_ns control curl -s --max-time 2 "http://$(addr_of ui-1):8080/error_rate") == 0 ]] ||
		fail "ui-1's api-gateway still fails requests after the rollback"
	ok "release 4 rolled back by its error rate on Prometheus (every health check passed)"
}

# summary_baseline: what release 2 recorded, and release 4's verdicts.
summary_baseline() {
	local b
	b=$(drover_api GET "/v1/deployments/${DEMO_IDS[1]}/baseline")
	[[ $(jq -r .recorded <<<"$b") == true ]] || fail "release 2 recorded no baseline: $b"
	echo "  baseline of release 2 ($(jq -r .id <<<"$b"), recorded when it succeeded):"
	jq -r '.metrics[] | "    \(.service) \(.metric): \(.text)"' <<<"$b"
	jq -e '[.metrics[] | select(.metric == "requests" and .value > 0)] | length == 1' <<<"$b" >/dev/null ||
		fail "release 2's request rate is not in its baseline: $b"
	echo "  release 4's analysis:"
	dep_get "${DEMO_IDS[3]}" | jq -r '(.analysis // [])[] | "    \(.service) \(.check): \(.verdict): \(.text)"'
}

# metric NAME: its value on droverd's /metrics.
metric() { drover_api GET /metrics | awk -v n="$1" '$1 == n { print $2 }'; }

# line_no FILE REGEX: the number of the first line matching (0: none).
line_no() { grep -nE -m1 "$2" "$1" | cut -d: -f1 || true; }
last_line_no() { grep -nE "$2" "$1" | tail -n 1 | cut -d: -f1 || true; }

# check_order FILE: `drover deploy --wait` printed things in the order they
# happened: a phase after the hook that ended the one before, a tier done
# after each of its services, a tier running before its hosts start.
check_order() {
	local f=$1 a b t
	a=$(line_no "$f" '^hook pre/backup-database db-1 succeeded')
	b=$(line_no "$f" ' running \(phase (migrations|tiers)\)$')
	[[ -n $a && -n $b ]] && ((a < b)) || fail "$f: the next phase printed before the pre hook succeeded"
	for t in core supporting ui; do
		a=$(last_line_no "$f" "^$t/[a-z-]+ done ")
		b=$(line_no "$f" "^tier $t done$")
		[[ -n $a && -n $b ]] && ((a < b)) || fail "$f: tier $t done printed before its last service was done"
		a=$(line_no "$f" "^tier $t running$")
		b=$(line_no "$f" "^$t/[a-z-]+ [a-z0-9-]+ starting ")
		[[ -n $a && -n $b ]] && ((a < b)) || fail "$f: a host of tier $t started before the tier"
	done
	ok "deploy --wait printed phases, tiers, services and hosts in causal order"
}

# check_rollback_lines FILE: rolled-back hosts show the change they went
# through (3.0.0 -> 2.0.0), and the reason keeps its URL whole.
check_rollback_lines() {
	local f=$1 reason
	grep -qE '^core/[a-z-]+ core-1 rolled_back 3\.0\.0 -> 2\.0\.0 ' "$f" ||
		fail "$f: no rolled_back 3.0.0 -> 2.0.0 line"
	if grep -E ' rolled_back 2\.0\.0 -> 3\.0\.0' "$f"; then fail "$f: a rollback printed as 2.0.0 -> 3.0.0"; fi
	reason=$(dep_get "${DEMO_IDS[2]}" | jq -r .reason)
	[[ $reason == *"hosts failed)" ]] || fail "the reason lost its end: $reason"
	if [[ $reason == *http* && ! $reason =~ http://127\.0\.0\.1:808[0-9]/health ]]; then
		fail "the reason cuts a URL: $reason"
	fi
	ok "rolled-back hosts print 3.0.0 -> 2.0.0; the reason keeps its URL whole"
}

# One row per deployment: id, release, outcome, duration, reason.
summary_deployments() {
	local id
	printf '  %-14s %-8s %-12s %-7s %s\n' deployment release outcome took reason
	for id in "${DEMO_IDS[@]}"; do
		dep_get "$id" | jq -r '[.id, .version, .state,
			(if .finished_ms > 0 then ((.finished_ms - .created_ms) / 100 | floor / 10 | tostring) + " s" else "-" end),
			(.reason // "")] | @tsv' |
			while IFS=$'\t' read -r a b c d e; do
				printf '  %-14s %-8s %-12s %-7s %s\n' "$a" "$b" "$c" "$d" "${e:0:100}"
			done
	done
}

# What release RELEASE did to SERVICE on HOST: "strategy: host state".
summary_cell() {
	jq -r --arg s "$2" --arg h "$3" '
		[.tiers[].services[] | select(.name == $s)][0] as $svc |
		if $svc == null then "-" else
		([$svc.hosts[] | select(.id == $h)][0].state // "-") as $st |
		"\($svc.strategy): \(if $st == "staged" then "staged only" else $st end)" end' <<<"$1"
}

summary_hosts() {
	local deps=() id svc h tier v1 v2 v3 now p
	for id in "${DEMO_IDS[@]}"; do deps+=("$(dep_get "$id")"); done
	printf '  %-10s %-20s %-13s %-24s %-24s %-24s %s\n' tier service host \
		"release 1" "release 2" "release 3" "runs now"
	for svc in "${E2E_SERVICES[@]}"; do
		tier=$(tier_of "$svc")
		for h in $(svc_hosts "$svc"); do
			v1=$(summary_cell "${deps[0]}" "$svc" "$h")
			v2=$(summary_cell "${deps[1]}" "$svc" "$h")
			v3=$(summary_cell "${deps[2]}" "$svc" "$h")
			now=""
			for p in $(_svc_ports "$svc"); do
				v=$(host_version "$h" "$p")
				[[ -n $v ]] && now+="$v (:$p) "
			done
			printf '  %-10s %-20s %-13s %-24s %-24s %-24s %s\n' "$tier" "$svc" "$h" \
				"$v1" "$v2" "$v3" "${now:-nothing}"
		done
	done
}

# show_service_users: every service process the agents started, as ps shows
# it; each must run as drover-svc with no capabilities and no_new_privs.
show_service_users() {
	local f pid pids=() bad=0 st
	for f in "$E2E_RUN"/agents/*/state/run/*.pid; do
		[[ -f $f ]] || continue
		read -r pid _ <"$f" || continue
		pids+=("$pid")
		st=$(awk '$1 == "CapEff:" || $1 == "NoNewPrivs:" { printf "%s ", $2 }' "/proc/$pid/status" 2>/dev/null)
		if [[ $(ps -o user= -p "$pid") != drover-svc || $st != "0000000000000000 1 " ]]; then
			echo "e2e: service process $pid ($f) runs as '$(ps -o user= -p "$pid")', CapEff/NoNewPrivs: $st" >&2
			bad=1
		fi
	done
	((${#pids[@]} > 0)) || fail "no service processes found under $E2E_RUN/agents"
	ps -o user:12,pid,args -p "$(IFS=,; echo "${pids[*]}")" | sed 's/^/  /'
	((bad == 0)) || fail "a service runs privileged"
}

summary_hooks() {
	local id
	for id in "${DEMO_IDS[@]}"; do
		dep_get "$id" | jq -r --arg id "$id" '(.hooks // [])[] |
			"  \($id) \(.phase) \(.name) on \(.host): \(.state)\(if .exit_code != null and .state == "failed" then " (exit \(.exit_code))" else "" end)"'
	done
	echo "  db-1 database: schema version $(db_sql 'SELECT version FROM schema_version;'), \
$(db_sql 'SELECT count(*) FROM berries;') berries rows, \
$(find "$E2E_RUN/fs/db-1/srv/berrys/backups" -name '*.db' | wc -l) verified backups"
}

summary_traffic() {
	local s
	for s in ui-1 ui-2; do
		printf '  api-gateway/%s weight %s, %s\n' "$s" \
			"$(haproxy_server_field api-gateway "$s" weight)" "$(haproxy_server_field api-gateway "$s" status)"
	done
	for s in ui-1-blue ui-1-green ui-2-blue ui-2-green; do
		printf '  web-dashboard/%s weight %s, %s\n' "$s" \
			"$(haproxy_server_field web-dashboard "$s" weight)" "$(haproxy_server_field web-dashboard "$s" status)"
	done
}

# ---- the optional systemd tier (DEMO_SYSTEMD=1; make demo-systemd) ----

SD_HOST=sd-1
SD_UNIT=drover-sd-dashboard.service
DEMO_SD_WHY=

# demo_systemd_ready: can this machine boot one? If not, fails with the
# reason in DEMO_SD_WHY (one line). The first run builds the machines' root file system (about a
# minute, cached under ~/.cache/drover-test/nspawn); every run makes this
# build's packages (cpack, about 20 s).
demo_systemd_ready() {
	local t
	((EUID == 0)) || {
		DEMO_SD_WHY="not root"
		return 1
	}
	for t in mmdebstrap systemd-nspawn nsenter unshare flock cpack dpkg-deb; do
		command -v "$t" >/dev/null || {
			DEMO_SD_WHY="$t is not installed (make deps installs it)"
			return 1
		}
	done
	[[ -f $E2E_BUILD_DIR/CPackConfig.cmake ]] || {
		DEMO_SD_WHY="no CPackConfig.cmake in $E2E_BUILD_DIR (configure the build with cmake)"
		return 1
	}
	# shellcheck source=/dev/null # (tests/systemd/lib/machine.sh, checked on its own)
	source "$E2E_DIR/../systemd/lib/machine.sh" || {
		DEMO_SD_WHY="cannot load tests/systemd/lib/machine.sh"
		return 1
	}
	rootfs_ensure "${SD_DROVER_PKGS[@]}" >"$E2E_RUN/logs/sd-rootfs.log" 2>&1 || {
		DEMO_SD_WHY="cannot build the machine's root file system: $(tail -n 1 "$E2E_RUN/logs/sd-rootfs.log")"
		return 1
	}
	sd_packages "$E2E_RUN/packages" 2>"$E2E_RUN/logs/sd-packages.log" || {
		DEMO_SD_WHY="cannot make the packages: $(tail -n 1 "$E2E_RUN/logs/sd-packages.log")"
		return 1
	}
}

# demo_systemd: a booted Debian machine (systemd as PID 1, systemd-nspawn)
# joins the network as sd-1, installs drover-agent from this build's
# package and enables it; a deployment runs sd-dashboard there with
# `driver: systemd`; then `systemctl status` of its unit, the limits
# systemd applies, and `drover logs` read from the unit's journal.
demo_systemd() {
	local plan=$E2E_RUN/berrys-systemd.yaml rc=0 a=/etc/drover/agent t0 deb id st
	if [[ ${DEMO_SYSTEMD:-0} != 1 ]]; then
		echo "systemd tier: not run (make demo-systemd, or DEMO_SYSTEMD=1, adds a booted machine whose service runs with driver: systemd; about a minute more)"
		return 0
	fi
	t0=$(e2e_now_ms)
	say "systemd tier: a booted Debian machine (systemd as PID 1) runs a service with driver: systemd"
	demo_systemd_ready || {
		echo "systemd tier: skipped: $DEMO_SD_WHY"
		return 0
	}
	deb=$(cd "$E2E_RUN/packages" && echo drover-agent_*.deb)
	net_add_host "$SD_HOST" || fail "net_add_host $SD_HOST"
	machine_up "$SD_HOST" --bind-ro="$E2E_RUN/packages:/srv/packages"
	machine_wait "$SD_HOST" 90 >/dev/null || {
		echo "systemd tier: skipped: machine $SD_HOST did not boot (see $E2E_RUN/logs/machine-$SD_HOST.log)"
		return 0
	}
	echo "\$ apt-get install ./$deb && drover-agent init ... && systemctl enable --now drover-agent    # on $SD_HOST"
	msh "$SD_HOST" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/srv/packages/$deb" \
		>"$E2E_RUN/logs/sd-agent-install.log" 2>&1 || fail "install drover-agent on $SD_HOST: $(tail -n 3 "$E2E_RUN/logs/sd-agent-install.log")"
	machine_cp "$DROVERD_DIR/coordinator.pub" "$SD_HOST" $a/coordinator.pub || fail "copy coordinator.pub"
	machine_cp "$DROVERD_DIR/enroll.token" "$SD_HOST" $a/enroll.token || fail "copy enroll.token"
	msh "$SD_HOST" drover-agent init --dir $a --coordinator "tcp://$(addr_of control):$DROVER_LINK_PORT" \
		--coordinator-key $a/coordinator.pub --enroll-token-file $a/enroll.token --id "$SD_HOST" \
		>"$E2E_RUN/logs/sd-agent-init.log" 2>&1 || fail "drover-agent init: $(tail -n 3 "$E2E_RUN/logs/sd-agent-init.log")"
	# the demo's registry speaks http; reconnect quickly
	msh "$SD_HOST" sed -i -E -e 's/^( *)insecure_registry:.*/\1insecure_registry: true/' \
		-e 's/^( *)reconnect_max:.*/\1reconnect_max: 1s/' $a/agent.yaml
	msh "$SD_HOST" grep -qE '^ *insecure_registry: true$' $a/agent.yaml || fail "insecure_registry not set on $SD_HOST"
	msh "$SD_HOST" systemctl enable --now drover-agent >/dev/null 2>&1 || fail "systemctl enable --now drover-agent"
	drover_wait_agents connected 30 "$SD_HOST" || fail "$SD_HOST's agent did not connect"
	plan_render berrys-systemd.yaml "$plan" || fail "plan berrys-systemd"
	echo "\$ drover deploy berrys-systemd.yaml --wait"
	in_ns control env DROVER_ADDR="$DROVER_ADDR" DROVER_TOKEN_FILE="$DROVER_TOKEN_FILE" \
		"$(e2e_bin drover)" deploy "$plan" --wait | tee "$E2E_RUN/deploy-systemd.out" || rc=${PIPESTATUS[0]}
	id=$(drover_api GET "/v1/deployments?limit=1" | jq -r '.deployments[0].id // empty')
	st=$(dep_state "$id")
	[[ $st == succeeded && $rc == 0 ]] || fail "the systemd tier's deployment $id ended $st (drover exited $rc)"
	echo "\$ systemctl status $SD_UNIT    # on $SD_HOST"
	msh "$SD_HOST" systemctl status --no-pager --lines 3 "$SD_UNIT" | sed 's/^/  /' || fail "$SD_UNIT is not active"
	echo "\$ systemctl show -p User,MemoryMax,CPUQuotaPerSecUSec,TasksMax,ProtectSystem,NoNewPrivileges $SD_UNIT"
	msh "$SD_HOST" systemctl show -p User,MemoryMax,CPUQuotaPerSecUSec,TasksMax,ProtectSystem,NoNewPrivileges \
		"$SD_UNIT" | sed 's/^/  /'
	[[ $(msh "$SD_HOST" systemctl show -P MemoryMax "$SD_UNIT") == $((64 << 20)) ]] || fail "MemoryMax is not 64M"
	echo "\$ drover logs --host $SD_HOST --lines 3 sd-dashboard    # from the unit's journal"
	drover_cli logs --host "$SD_HOST" --lines 3 sd-dashboard | tee "$E2E_RUN/sd-logs.out" | sed 's/^/  /' ||
		fail "drover logs sd-dashboard"
	grep -q 'name=sd-dashboard' "$E2E_RUN/sd-logs.out" || fail "drover logs did not show sd-dashboard's journal"
	ok "systemd tier: $SD_UNIT active on $SD_HOST (systemd as PID 1), limits applied, drover logs from its journal ($(secs $(($(e2e_now_ms) - t0))))"
}

ref_require
e2e_require_tools prometheus
say "drover demo: the runbook's reference system on seven hosts"
cat <<'EOF'
   hosts (network namespaces on one bridge; droverd, the registry and HAProxy
   in a "control" namespace):
     core-1 core-2           project-coordinator agent-orchestrator model-orchestration
     supporting-1/2          planning-system tool-integration service-integration
     ui-1 ui-2               api-gateway (HAProxy :8000), web-dashboard (HAProxy :8001)
     db-1                    the database: backup before each release, migrations
EOF
say "bringing up hosts, registry (24 images), HAProxy, droverd, 7 agents"
E2E_DROVERD_EXTRA=prom_droverd_conf ref_up --no-deploy
drover_cli agents

say "release 1: all eight services, rolling one host at a time"
demo_release 1 succeeded
assert_fleet v1
say "the services run as the unprivileged user drover-svc (no capabilities, no_new_privs)"
show_service_users

say "release 2, first as a dry run: what would it do?"
demo_dry_run 2

say "Prometheus, for decisions from metrics"
demo_metrics_up

say "release 2: rolling core/supporting, canary api-gateway (HAProxy weights), blue-green web-dashboard"
say "(requests to web-dashboard through HAProxy all along: none may fail across the switch)"
web_load_start
demo_release 2 succeeded demo_add_baseline
web_load_check
assert_fleet v2
check_order "$E2E_RUN/deploy-v2.out"
[[ $(db_sql 'SELECT version FROM schema_version;') == 42 ]] || fail "migration 0042 did not run"

say "release 3: a bad release (its /health answers 503): watch the automatic rollback"
demo_release 3 rolled_back
assert_fleet v2
check_rollback_lines "$E2E_RUN/deploy-v3.out"
[[ $(db_sql 'SELECT version FROM schema_version;') == 42 ]] || fail "migration 0043 did not run down"
for id in "${DEMO_IDS[@]}"; do assert_events "$id" >/dev/null; done

say "release 4: healthy, but it fails 30 % of its requests: watch a metric roll it back"
demo_metric_release
assert_fleet v2

# DEMO_SCREENSHOT=FILE: the dashboard's timeline of release 3 as a PNG
# (docs/timeline-release3.png is one), with playwright-core from make deps.
if [[ -n ${DEMO_SCREENSHOT:-} ]]; then
	in_ns control env PLAYWRIGHT_DIR="${PLAYWRIGHT_DIR:-${DROVER_TEST_CACHE:-$HOME/.cache/drover-test}/playwright}" \
		DROVER_URL="$DROVER_ADDR" DROVER_TOKEN="$(cat "$DROVER_TOKEN_FILE")" DEPLOYMENT="${DEMO_IDS[2]}" \
		OUT="$DEMO_SCREENSHOT" HOME="$E2E_RUN" node "$E2E_DIR/ui/screenshot.js" || fail "screenshot"
fi

say "drift: a service killed by hand, seen by drover drift, fixed by drover converge"
demo_drift

demo_systemd

say "summary"
summary_deployments
echo
summary_hosts
echo
summary_hooks
echo
summary_traffic
echo
summary_baseline
echo
echo "release 3 was rolled back automatically: $(dep_get "${DEMO_IDS[2]}" | jq -r .reason)"
echo "release 4 was rolled back by a metric: $(dep_get "${DEMO_IDS[3]}" | jq -r .reason)"
say "demo done in $(secs $(($(e2e_now_ms) - DEMO_T0))); stopping everything"
