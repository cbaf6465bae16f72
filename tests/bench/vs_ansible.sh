#!/usr/bin/env bash
# bench: the same rolling update by drover and by Ansible, on the same hosts,
# in one run.
#
#   vs_ansible.sh [HOSTS] [ROUNDS]      (default 20 hosts, 2 rounds each)
#   -> $BENCH_OUT/vs_ansible.json
#
# HOSTS network namespaces (ui-1..ui-N, tests/e2e/lib), a docker-registry in
# the control namespace with the berry-svc image of api-gateway in v1 and v2.
# The update, for both: 25 % of the hosts at a time; on each host stop the
# running version, start the new one from the image's files, and wait until
# GET /health answers 200 (polled every 100 ms).
#
#   drover:  droverd + one real drover-agent per namespace (exec driver), the
#            plan tests/bench/plans/rolling.yaml.in, `drover deploy --wait`
#            run inside the control namespace; service on port 8080.
#   Ansible: ansible-playbook tests/bench/ansible/rolling.yml, serial: 25%,
#            ansible_connection: local, every command that touches a host run
#            inside its namespace with `ip netns exec` (the release is fetched
#            from the registry by digest and unpacked once per version, as
#            drover's agent caches it); service on port 8081.
# Each round updates v1 -> v2 or back (drover first, then Ansible); the first
# install of v1 is not timed. Reported: the median wall time of each, and
# ansible_s / drover_s. Needs root (namespaces); exits 77 otherwise.
# AGENT_SMAPS_DIR=DIR keeps every agent's /proc/PID/smaps, idle (connected,
# nothing deployed) in DIR/idle/HOST and after the deployments in
# DIR/after/HOST (diff them: which mappings the deployments added).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export E2E_BUILD_DIR=${E2E_BUILD_DIR:-${DROVER_BUILD:-$HERE/../../build}}
source "$HERE/../e2e/lib/e2e.sh"
N=${1:-20}
ROUNDS=${2:-2}
BENCH_OUT=${BENCH_OUT:-$E2E_BUILD_DIR/bench}
mkdir -p "$BENCH_OUT"

e2e_require_root
command -v ansible-playbook >/dev/null || skip "ansible-playbook is not installed (make bench installs ansible-core)"
HOSTS=()
for ((i = 1; i <= N; i++)); do HOSTS+=("ui-$i"); done
net_up "${HOSTS[@]}"
registry_up
images_build api-gateway
images_push api-gateway

# ---- drover ----
drover_control_init
drover_control_start
engine_code=$(in_ns control curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
	-H "Authorization: Bearer $(cat "$DROVER_TOKEN_FILE")" -H 'Content-Type: application/json' \
	--data '{}' "$DROVER_ADDR/v1/deployments")
HAVE_ENGINE=1
[[ $engine_code == 404 ]] && HAVE_ENGINE=0
if ((HAVE_ENGINE)); then
	drover_agents_up "${HOSTS[@]}"
fi

# agents_smaps WHEN: with AGENT_SMAPS_DIR, copy each agent's smaps to
# $AGENT_SMAPS_DIR/WHEN/HOST.
agents_smaps() {
	[[ -n ${AGENT_SMAPS_DIR:-} ]] && ((HAVE_ENGINE)) || return 0
	local h
	mkdir -p "$AGENT_SMAPS_DIR/$1"
	for h in "${HOSTS[@]}"; do
		cp "/proc/$(proc_pid "agent-$h")/smaps" "$AGENT_SMAPS_DIR/$1/$h"
	done
}
agents_smaps idle

# plan VERSION -> the plan file for that version of api-gateway on every host
plan() {
	local v=$1 f=$E2E_RUN/plan-$1.yaml
	sed -e "s|@VERSION@|$v|" -e "s|@IMAGE@|$(image_ref api-gateway "$v")|" \
		"$HERE/plans/rolling.yaml.in" >"$f"
	echo "$f"
}

now_ms() { date +%s%3N; }

drover_round() {
	local v=$1 t0 t1
	t0=$(now_ms)
	drover_cli deploy "$(plan "$v")" --wait >>"$E2E_RUN/logs/drover-deploy.log" 2>&1 ||
		fail "drover deploy $v failed: $(tail -n 20 "$E2E_RUN/logs/drover-deploy.log")"
	t1=$(now_ms)
	drover_batches_ok >&2
	echo $((t1 - t0))
}

# The deployment just done went 25 % at a time: 4 batches, and never more
# than N/4 hosts between their start and their end (from drover status).
drover_batches_ok() {
	local st max
	st=$(drover_cli status --json) || fail "drover status: $st"
	[[ $(jq '.tiers[0].services[0].batches' <<<"$st") == 4 ]] ||
		fail "not 4 batches: $(jq -c '.tiers[0].services[0] | del(.hosts)' <<<"$st")"
	max=$(jq '[.tiers[0].services[0].hosts[] | [.started_ms, 1], [.finished_ms, -1]]
		| sort | reduce .[] as $e ({n: 0, max: 0}; .n += $e[1] | .max = ([.max, .n] | max)) | .max' <<<"$st")
	((max >= 1 && max <= N / 4)) || fail "$max hosts were updated at once (at most $((N / 4)))"
	echo "drover: 4 batches, at most $max hosts at once"
}

# ---- Ansible ----
ANS=$E2E_RUN/ansible
mkdir -p "$ANS"
{
	echo "all:"
	echo "  children:"
	echo "    fleet:"
	echo "      hosts:"
	for h in "${HOSTS[@]}"; do
		echo "        $h: {ns: $(ns_of "$h"), addr: $(addr_of "$h")}"
	done
	echo "  vars:"
	echo "    ansible_connection: local"
	echo "    ansible_python_interpreter: /usr/bin/python3"
	echo "    base: $ANS"
	echo "    registry: http://$E2E_REGISTRY"
	echo "    repo: berrys/api-gateway"
	echo "    port: 8081"
} >"$ANS/inventory.yml"
cat >"$ANS/ansible.cfg" <<EOF
[defaults]
forks = 5
host_key_checking = False
retry_files_enabled = False
stdout_callback = default
interpreter_python = /usr/bin/python3
EOF

# The image's layers (digests) for VERSION, read from the registry in the
# control namespace, as a JSON list for the playbook.
layers() {
	in_ns control curl -sf --max-time 10 \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://$E2E_REGISTRY/v2/berrys/api-gateway/manifests/$(image_digest api-gateway "$1")" |
		jq -c '[.layers[].digest]'
}

ansible_round() {
	local v=$1 t0
	t0=$(now_ms)
	ANSIBLE_CONFIG=$ANS/ansible.cfg ansible-playbook -i "$ANS/inventory.yml" \
		"$HERE/ansible/rolling.yml" -e "{\"version\": \"$v\", \"layers\": $(layers "$v")}" \
		>>"$E2E_RUN/logs/ansible.log" 2>&1 ||
		fail "ansible-playbook $v failed: $(tail -n 30 "$E2E_RUN/logs/ansible.log")"
	echo $(($(now_ms) - t0))
}

ansible_healthy_on() {
	local v=$1 h
	for h in "${HOSTS[@]}"; do
		[[ $(in_ns "$h" curl -sf --max-time 2 "http://$(addr_of "$h"):8081/version") == "$v" ]] ||
			return 1
	done
}

drover_healthy_on() {
	local v=$1 h
	for h in "${HOSTS[@]}"; do
		[[ $(in_ns "$h" curl -sf --max-time 2 "http://$(addr_of "$h"):8080/version") == "$v" ]] ||
			return 1
	done
}

# first install, not timed
ansible_round v1 >/dev/null
ansible_healthy_on v1 || fail "Ansible did not install v1 everywhere"
((HAVE_ENGINE)) && { drover_round v1 >/dev/null; drover_healthy_on v1 || fail "drover did not install v1"; }
ok "v1 installed on $N hosts"

d_ms=() a_ms=()
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then v=v2; else v=v1; fi
	dt=n/a
	if ((HAVE_ENGINE)); then
		dt=$(drover_round $v)
		d_ms+=("$dt")
		drover_healthy_on $v || fail "drover: not every host serves $v"
	fi
	at=$(ansible_round $v)
	a_ms+=("$at")
	ansible_healthy_on $v || fail "Ansible: not every host serves $v"
	ok "round $r ($v): drover $dt ms, Ansible $at ms"
done

# The agents' memory after the deployments (pulls in the fetch helper,
# layers unpacked by the unpack helper, HTTP health checks): median VmRSS and
# RssAnon (KiB) over this run's drover-agent processes (their command lines
# name this run's directory; only read, never signalled).
agents_smaps after
agent_rss=() agent_anon=()
for p in $(pgrep -x drover-agent); do
	tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$E2E_RUN/" || continue
	agent_rss+=("$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$p/status")")
	agent_anon+=("$(awk '$1 == "RssAnon:" { print $2 }' "/proc/$p/status")")
done

# The floor: what the services themselves take. On every host, berry-svc
# started directly (port 8082) and polled every millisecond until healthy,
# then stopped with SIGTERM (start_to_healthy.py, 3 runs, medians). A
# health-gated rolling update cannot be faster than, per batch, the slowest
# host's stop plus start-to-healthy: floor = the sum of that over the batches
# (hosts in batches of N/4 in their order).
floor_ms=0 host_ms=()
for h in "${HOSTS[@]}"; do
	j=$(in_ns "$h" python3 "$HERE/start_to_healthy.py" "$(addr_of "$h")" 8082 3 -- \
		"$(e2e_bin berry-svc)" --name floor --port 8082 --listen-addr "$(addr_of "$h")") ||
		fail "start_to_healthy on $h: $j"
	host_ms+=("$(jq '.start_to_healthy_ms + .stop_ms' <<<"$j")")
done
per=$((N / 4 > 0 ? N / 4 : 1))
floor_ms=$(printf '%s\n' "${host_ms[@]}" | awk -v per="$per" \
	'{ b = int((NR - 1) / per); if ($1 > m[b]) m[b] = $1 } END { for (b in m) s += m[b]; printf "%.1f", s }')
ok "floor (sum over batches of the slowest host's stop + start-to-healthy): $floor_ms ms"

median() { printf '%s\n' "$@" | sort -n | awk '$1 != "" { v[++n] = $1 } END { print (n ? v[int((n + 1) / 2)] : "null") }'; }
d=$(median "${d_ms[@]}")
a=$(median "${a_ms[@]}")
jq -n --argjson n "$N" --argjson rounds "$ROUNDS" --argjson d "${d:-null}" --argjson a "$a" \
	--arg dl "${d_ms[*]}" --arg al "${a_ms[*]}" --arg ansible "$(ansible --version | head -n 1)" \
	--argjson floor "$floor_ms" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
	--argjson arss "$(median "${agent_rss[@]}")" --argjson aanon "$(median "${agent_anon[@]}")" \
	--argjson nagents "${#agent_rss[@]}" \
	'{hosts: $n, rounds: $rounds, batch: "25%", drover_s: (if $d then $d / 1000 else null end),
	  ansible_s: ($a / 1000), ratio: (if $d then $a / $d else null end),
	  drover_ms: ($dl | split(" ") | map(select(. != "") | tonumber)),
	  ansible_ms: ($al | split(" ") | map(tonumber)), ansible_version: $ansible,
	  floor_s: ($floor / 1000), drover_over_floor: (if $d then $d / $floor else null end),
	  agents_after: {count: $nagents, median_vmrss_kb: $arss, median_rssanon_kb: $aanon},
	  load: $load}' \
	>"$BENCH_OUT/vs_ansible.json"
cat "$BENCH_OUT/vs_ansible.json"
((HAVE_ENGINE)) || skip "droverd has no deployment engine yet (POST /v1/deployments is 404): only Ansible was timed"
ok "drover $d ms, Ansible $a ms: Ansible takes $(jq -r '.ratio * 100 | round / 100' "$BENCH_OUT/vs_ansible.json") x as long"
