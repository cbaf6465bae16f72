#!/usr/bin/env bash
# soak.sh (`make soak`; CTest soak_short, label "soak"): the chaos soak.
#
# The reference system (tests/e2e: eight services in three tiers on seven
# namespaced hosts, real registry, HAProxy, droverd and agents) takes
# SOAK_DEPLOYMENTS deployments back to back (tests/soak/plans/soak.yaml:
# rolling core and supporting tiers, a canary api-gateway and a blue-green
# web-dashboard behind HAProxy, a database backup first). Releases alternate
# good (v2, v1, v2, ...) and unhealthy (v3, whose /health answers 503 and
# which drover must roll back). During each deployment a fault injector,
# driven by a seed it prints, injects faults at random times, each healed
# after a random hold:
#
#   agent_kill    an agent kill -9, then started again
#   droverd_kill  droverd kill -9, then started again
#   partition     iptables DROP on a host's link, then removed
#   registry      the registry stopped, then started
#   disk          a host's agent directory (a small tmpfs) filled, then freed
#   haproxy       HAProxy restarted (its runtime weights are lost)
#
# After each deployment and at the end it checks the invariants:
#   terminal     the deployment reached a final state (none stuck)
#   outcome      succeeded: every service runs the new release; rolled back:
#                every service runs the one before
#   records      what droverd records for each host (GET /v1/agents: release,
#                version, port, running and healthy) is what answers there,
#                every agent connected with nothing unacknowledged
#   traffic      HAProxy sends traffic exactly to what runs: api-gateway on
#                both ui hosts, web-dashboard to the slot (port) that runs
#   once         no instruction ran twice: each agent's step records have
#                unique sequence numbers matching droverd's instructions, and
#                no step started twice in an agent's log
#   rows         events, audit and deployment rows agree: the history is
#                complete (assert_events), the deployments row says the same
#                final state, and the audit log holds its POST
#   bounded      droverd's database stays within the soak's retention limits
#                (SOAK_EVENTS_MAX events, default 3000; SOAK_KEEP_DEPLOYMENTS
#                finished deployments, default 10)
#   leaks        per host exactly one agent and one process per service that
#                runs there; at the end, after teardown, no process,
#                namespace, mount or run directory of the soak is left
#
# It ends with one summary line. A failure names the seed: the same fault
# schedule replays with SOAK_SEED=N (timing differs from run to run).
#
#   sudo make soak                                  100 deployments
#   sudo SOAK_SEED=1234 SOAK_DEPLOYMENTS=10 bash tests/soak/soak.sh
#
# Environment: SOAK_DEPLOYMENTS (default 100), SOAK_SEED (default: random),
# SOAK_FAULTS_MIN, SOAK_FAULTS_MAX (faults per deployment: at least, at
# most; default 0 and 2; a deployment that ends first gets fewer),
# SOAK_MAX_SECONDS (stop starting deployments after this long; default 0,
# no limit: the summary says how many ran).
set -euo pipefail
SOAK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR/../e2e
source "$SOAK_DIR/../e2e/lib/e2e.sh"

SOAK_DEPLOYMENTS=${SOAK_DEPLOYMENTS:-100}
SOAK_SEED=${SOAK_SEED:-$(((RANDOM << 15 | RANDOM) % 1000000))}
SOAK_FAULTS_MAX=${SOAK_FAULTS_MAX:-2}
SOAK_FAULTS_MIN=${SOAK_FAULTS_MIN:-0}
SOAK_MAX_SECONDS=${SOAK_MAX_SECONDS:-0}
SOAK_DISK_HOST=supporting-2
# Retention limits for droverd (small, so that the soak prunes as it goes)
SOAK_EVENTS_MAX=${SOAK_EVENTS_MAX:-3000}
SOAK_KEEP_DEPLOYMENTS=${SOAK_KEEP_DEPLOYMENTS:-10}
[[ $SOAK_DEPLOYMENTS =~ ^[0-9]+$ && $SOAK_SEED =~ ^[0-9]+$ && $SOAK_FAULTS_MAX =~ ^[0-9]+$ &&
	$SOAK_FAULTS_MIN =~ ^[0-9]+$ && $SOAK_FAULTS_MIN -le $SOAK_FAULTS_MAX ]] ||
	{
		echo "soak: SOAK_DEPLOYMENTS, SOAK_SEED, SOAK_FAULTS_MIN <= SOAK_FAULTS_MAX must be numbers" >&2
		exit 2
	}
echo "soak: SOAK_SEED=$SOAK_SEED (replay: SOAK_SEED=$SOAK_SEED SOAK_DEPLOYMENTS=$SOAK_DEPLOYMENTS bash tests/soak/soak.sh)"
RANDOM=$SOAK_SEED # the fault schedule: kinds, targets, delays, holds

SOAK_T0=$(e2e_now_ms)
declare -A FAULTS=([agent_kill]=0 [droverd_kill]=0 [partition]=0 [registry]=0 [disk]=0 [haproxy]=0)
declare -A OUTCOMES=()
declare -A CUR=() # service -> the version that should run (v1, v2)
CHECKS=0
DONE=0
HEAL=() # the command that heals the fault in force, if any

soak_fail() {
	echo "soak: FAIL after $DONE deployments (SOAK_SEED=$SOAK_SEED): $*" >&2
	soak_summary >&2
	exit 1
}
check() {
	CHECKS=$((CHECKS + 1))
}

faults_total() {
	local k n=0
	for k in "${!FAULTS[@]}"; do n=$((n + FAULTS[$k])); done
	echo "$n"
}

soak_summary() {
	local k f="" o=""
	for k in agent_kill droverd_kill partition registry disk haproxy; do f+=" $k=${FAULTS[$k]}"; done
	for k in "${!OUTCOMES[@]}"; do o+=" $k=${OUTCOMES[$k]}"; done
	echo "soak: seed=$SOAK_SEED deployments=$DONE (${o# }) faults=$(faults_total) (${f# }) invariant_checks=$CHECKS passed duration=$((($(e2e_now_ms) - SOAK_T0) / 1000))s"
}

# ---- faults ----

# rand N: RND = 0..N-1. Never $(...): bash reseeds RANDOM in a subshell, so
# the schedule would not follow the seed.
RND=0
rand() { RND=$((RANDOM % $1)); }

heal_now() {
	local h
	for h in "${HEAL[@]}"; do eval "$h" || soak_fail "cannot heal: $h"; done
	HEAL=()
}

start_droverd_again() {
	proc_wait_gone droverd 10 || return 1
	drover_control_start
}

# inject KIND: start one fault; HEAL gets what ends it.
inject() {
	local kind=$1 hosts=(core-1 core-2 supporting-1 supporting-2 ui-1 ui-2 db-1) h
	rand ${#hosts[@]}
	h=${hosts[$RND]}
	case $kind in
	agent_kill)
		proc_signal "agent-$h" KILL || return 1
		proc_wait_gone "agent-$h" 10 || return 1
		HEAL=("drover_agent_start $h")
		;;
	droverd_kill)
		proc_signal droverd KILL || return 1
		HEAL=("start_droverd_again")
		;;
	partition)
		drop_on "$h" || return 1
		HEAL=("undrop $h")
		;;
	registry)
		registry_down || return 1
		HEAL=("registry_up")
		;;
	disk)
		h=$SOAK_DISK_HOST
		dd if=/dev/zero of="$E2E_RUN/agents/$h/filler" bs=64k status=none 2>/dev/null || true
		HEAL=("rm -f $E2E_RUN/agents/$h/filler")
		;;
	haproxy)
		haproxy_down || return 1
		HEAL=("haproxy_up")
		;;
	esac
	FAULTS[$kind]=$((FAULTS[$kind] + 1))
	case $kind in agent_kill | partition | disk) kind+=" $h" ;; esac
	echo "# fault $(faults_total): $kind at +$((($(e2e_now_ms) - SOAK_T0) / 1000))s"
}

FAULT_KINDS=(agent_kill droverd_kill partition registry disk haproxy)

dep_final() {
	local st
	st=$(dep_state "$1" 2>/dev/null) || return 1
	[[ $st == succeeded || $st == failed || $st == rolled_back || $st == aborted ]]
}

# While deployment ID runs: up to SOAK_FAULTS_MAX faults, each after a
# random delay (0-6 s) and held 1-5 s; a fault never outlives this call.
chaos() {
	local id=$1 n i delay hold kind
	rand $((SOAK_FAULTS_MAX - SOAK_FAULTS_MIN + 1))
	n=$((SOAK_FAULTS_MIN + RND))
	echo "# $id: $n fault(s) planned"
	for ((i = 0; i < n; i++)); do
		rand 60
		delay=$RND
		rand 40
		hold=$((10 + RND))
		rand ${#FAULT_KINDS[@]}
		kind=${FAULT_KINDS[$RND]}
		sleep "$((delay / 10)).$((delay % 10))"
		# droverd may be the one that is down: the state comes from the last look
		if dep_final "$id"; then
			echo "# $id ended before fault $((i + 1))"
			break
		fi
		inject "$kind" || soak_fail "cannot inject $kind"
		sleep "$((hold / 10)).$((hold % 10))"
		heal_now
	done
}

# ---- invariants ----

# _records: every agent connected with nothing unacknowledged; for every
# service on every host, what answers (version, port) is what droverd records
# as running and healthy; exactly one slot of web-dashboard answers.
_records() {
	local a h svc p got rel ports answered
	a=$(drover_api GET /v1/agents) || return 1
	for h in "${REF_HOSTS[@]}"; do
		jq -e --arg h "$h" '.agents[] | select(.id == $h) |
			.state == "connected" and (.acked_seq + 1 >= .next_seq)' <<<"$a" >/dev/null || {
			echo "$h: $(jq -c --arg h "$h" '.agents[] | select(.id == $h) | {state, acked_seq, next_seq}' <<<"$a")"
			return 1
		}
	done
	for svc in "${E2E_SERVICES[@]}"; do
		for h in $(svc_hosts "$svc"); do
			answered=()
			for p in $(_svc_ports "$svc"); do
				got=$(host_version "$h" "$p")
				[[ -n $got ]] && answered+=("$got:$p")
			done
			((${#answered[@]} == 1)) || {
				echo "$svc on $h: answers on ${#answered[@]} ports (${answered[*]})"
				return 1
			}
			got=${answered[0]%%:*}
			p=${answered[0]##*:}
			rel=$(jq -c --arg h "$h" --arg s "$svc" '.agents[] | select(.id == $h) |
				[.releases[] | select(.service == $s and .state == "running")]' <<<"$a")
			jq -e --arg v "${got#v}.0.0" --argjson p "$p" \
				'length == 1 and (.[0].version == $v) and (.[0].healthy == true or .[0].healthy == 1) and ((.[0].port // $p) == $p)' \
				<<<"$rel" >/dev/null || {
				echo "$svc on $h answers $got on :$p; droverd records $rel"
				return 1
			}
		done
	done
}

# _traffic: HAProxy sends requests to what runs and nowhere else.
_srv_takes() { # BACKEND SERVER: UP, weight > 0, not in maintenance or drain
	local st w
	st=$(haproxy_server_field "$1" "$2" status 2>/dev/null) || return 1
	w=$(haproxy_server_field "$1" "$2" weight 2>/dev/null) || return 1
	[[ $st == UP* && $w =~ ^[0-9]+$ && $w -gt 0 ]]
}
_traffic() {
	local h slot other
	for h in ui-1 ui-2; do
		_srv_takes api-gateway "$h" || {
			echo "api-gateway/$h takes no traffic: $(haproxy_server_field api-gateway "$h" status) weight $(haproxy_server_field api-gateway "$h" weight)"
			return 1
		}
		if [[ -n $(host_version "$h" 9081) ]]; then slot=green other=blue; else slot=blue other=green; fi
		_srv_takes web-dashboard "$h-$slot" || {
			echo "web-dashboard/$h-$slot runs but takes no traffic"
			return 1
		}
		! _srv_takes web-dashboard "$h-$other" || {
			echo "web-dashboard/$h-$other takes traffic but nothing runs there"
			return 1
		}
	done
}

# _once: no step ran twice on any agent.
_once() {
	local h db dup bad
	for h in "${REF_HOSTS[@]}"; do
		db=$E2E_RUN/agents/$h/state/agent.db
		dup=$(grep -o 'msg="step started" step=[^ ]*' "$(proc_log "agent-$h")" | sort | uniq -d | head -3)
		[[ -z $dup ]] || {
			echo "$h started a step twice: $dup"
			return 1
		}
		dup=$(sqlite3 -cmd '.timeout 5000' "$db" \
			"SELECT seq FROM steps GROUP BY seq HAVING count(*) > 1 LIMIT 3" 2>&1) || {
			echo "$h: $dup"
			return 1
		}
		[[ -z $dup ]] || {
			echo "$h: two steps with sequence $dup"
			return 1
		}
		# every step the agent ran is droverd's instruction of that step id,
		# with the same sequence number (for the deployments droverd keeps)
		bad=$(sqlite3 -cmd '.timeout 5000' "$DROVERD_DIR/droverd.db" \
			"ATTACH '$db' AS a;
			 SELECT s.step_id || ' agent seq ' || s.seq || ' droverd ' || coalesce(i.seq, 'none')
			 FROM a.steps s LEFT JOIN instructions i ON i.agent_id = '$h' AND i.step_id = s.step_id
			 WHERE i.seq IS NOT s.seq AND s.deployment IN (SELECT id FROM deployments)
			 LIMIT 3" 2>&1) || {
			echo "$h: $bad"
			return 1
		}
		[[ -z $bad ]] || {
			echo "$h: step records disagree with droverd: $bad"
			return 1
		}
	done
}

# _rows ID: the deployments row and the audit log agree with the API.
_rows() {
	local id=$1 st row audit
	st=$(dep_state "$id")
	row=$(sqlite3 -cmd '.timeout 5000' "$DROVERD_DIR/droverd.db" \
		"SELECT state FROM deployments WHERE id = '$id'")
	[[ $row == "$st" ]] || {
		echo "$id: the API says $st, the deployments row $row"
		return 1
	}
	audit=$(sqlite3 -cmd '.timeout 5000' "$DROVERD_DIR/droverd.db" \
		"SELECT count(*) FROM audit WHERE method = 'POST' AND path = '/v1/deployments'
		 AND status = 201 AND detail LIKE 'deployment=$id %'")
	[[ $audit == 1 ]] || {
		echo "$id: $audit audit rows for its POST"
		return 1
	}
}

# _procs: one agent per host, and one process per service that runs there.
_procs() {
	local h ns want pids p comm agents svcs
	for h in "${REF_HOSTS[@]}"; do
		case $h in
		core-* | supporting-*) want=3 ;;
		ui-*) want=2 ;;
		*) want=0 ;;
		esac
		ns=$(ns_of "$h")
		agents=0 svcs=0
		pids=$(ip netns pids "$ns")
		for p in $pids; do
			comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
			case $comm in
			drover-agent) agents=$((agents + 1)) ;;
			berry-svc) svcs=$((svcs + 1)) ;;
			esac
		done
		((agents == 1 && svcs == want)) || {
			echo "$h: $agents agents, $svcs service processes (want 1 and $want)"
			return 1
		}
	done
}

# _bounded: retention keeps the database within the soak's limits.
_bounded() {
	local ev dep
	ev=$(sqlite3 -cmd '.timeout 5000' "$DROVERD_DIR/droverd.db" "SELECT count(*) FROM events")
	dep=$(sqlite3 -cmd '.timeout 5000' "$DROVERD_DIR/droverd.db" \
		"SELECT count(*) FROM deployments WHERE finished_ms > 0")
	((ev <= SOAK_EVENTS_MAX && dep <= SOAK_KEEP_DEPLOYMENTS)) || {
		echo "$ev events (limit $SOAK_EVENTS_MAX), $dep finished deployments (limit $SOAK_KEEP_DEPLOYMENTS)"
		return 1
	}
}

# check_after ID VERSION: every invariant after deployment ID of VERSION.
check_after() {
	local id=$1 v=$2 st svc out kv=()
	st=$(dep_state "$id")
	check # terminal (dep_wait_final returned)
	case $st in
	succeeded) for svc in "${E2E_SERVICES[@]}"; do CUR[$svc]=$v; done ;;
	rolled_back | failed | aborted) ;;
	esac
	for svc in "${E2E_SERVICES[@]}"; do kv+=("$svc=${CUR[$svc]}"); done
	wait_for "records of $id" 60 _records || soak_fail "records after $id ($st): $(_records 2>&1 | tail -1)"
	check
	out=$(assert_fleet v0 "${kv[@]}" 2>&1) || soak_fail "outcome of $id ($st): $out"
	check
	wait_for "traffic after $id" 30 _traffic || soak_fail "traffic after $id: $(_traffic 2>&1 | tail -1)"
	check
	out=$(_once 2>&1) || soak_fail "after $id: $out"
	check
	out=$(assert_events "$id" 2>&1) || soak_fail "events of $id: $out"
	out=$(_rows "$id" 2>&1) || soak_fail "rows of $id: $out"
	check
	wait_for "processes after $id" 30 _procs || soak_fail "processes after $id: $(_procs 2>&1 | tail -1)"
	check
	wait_for "retention after $id" 30 _bounded || soak_fail "database after $id: $(_bounded 2>&1 | tail -1)"
	check
}

# ---- the end: nothing of the soak is left ----

check_no_leaks() {
	local run=$E2E_RUN prefix=$E2E_PREFIX left p
	net_down || true
	left=$(ip netns list | grep -c "^$prefix-" || true)
	((left == 0)) || soak_fail "$left namespaces left: $(ip netns list | grep "^$prefix-")"
	findmnt -rn -o TARGET | grep -q "^$run" && soak_fail "mounts left: $(findmnt -rn -o TARGET | grep "^$run")"
	# a process of the run names its directory or works in it (services run
	# in their release root); an operator's grep over its logs does not count
	left=""
	for p in /proc/[0-9]*; do
		case $(cat "$p/comm" 2>/dev/null) in grep | sqlite3 | tail | less | cat | jq) continue ;; esac
		if grep -qsF "$run" "$p/cmdline" || [[ $(readlink "$p/cwd" 2>/dev/null) == "$run"/* ]]; then
			left+=" ${p#/proc/}($(cat "$p/comm" 2>/dev/null))"
		fi
	done
	[[ -z $left ]] || soak_fail "processes of the soak left:$left"
	ip route show | grep -q "blackhole $E2E_SUBNET" && soak_fail "the blackhole route is left"
	check
}

# ---- the run ----

ref_require
ref_up
for svc in "${E2E_SERVICES[@]}"; do CUR[$svc]=v1; done

# Small retention limits: the database must stay bounded under the soak.
conf=$DROVERD_DIR/droverd.yaml
sed -i -E "/^  events:/,/^  [a-z]/ s|^(    max_rows:).*|\1 $SOAK_EVENTS_MAX|
	/^  deployments:/,/^  [a-z]/ s|^(    max_rows:).*|\1 $SOAK_KEEP_DEPLOYMENTS|
	s|^(  interval:).*|\1 1s|" "$conf"
grep -A4 '^  events:' "$conf" | grep -q "max_rows: $SOAK_EVENTS_MAX" || fail "retention limits not set in $conf"
proc_stop droverd || fail "stop droverd"
drover_control_start || fail "droverd with retention limits"
drover_wait_agents connected 30 "${REF_HOSTS[@]}" || fail "agents after droverd's restart"

# The disk host's agent directory on a tmpfs of its own (room for its
# releases and cache, plus 48 MiB), so filling it touches nothing else.
dir=$E2E_RUN/agents/$SOAK_DISK_HOST
proc_stop "agent-$SOAK_DISK_HOST" || fail "stop agent-$SOAK_DISK_HOST"
e2e_mount_tmpfs "$dir" "$(($(du -sk "$dir" | cut -f1) * 3 + 49152))k" || fail "tmpfs on $dir"
drover_agent_start "$SOAK_DISK_HOST" || fail "start agent-$SOAK_DISK_HOST"
drover_wait_agents connected 30 "$SOAK_DISK_HOST" || fail "$SOAK_DISK_HOST did not reconnect"
e2e_at_exit rm -f "$dir/filler"

good=v2
for ((i = 1; i <= SOAK_DEPLOYMENTS; i++)); do
	if ((SOAK_MAX_SECONDS > 0 && ($(e2e_now_ms) - SOAK_T0) / 1000 >= SOAK_MAX_SECONDS)); then
		echo "soak: time budget of ${SOAK_MAX_SECONDS}s spent: stopping after $DONE deployments"
		break
	fi
	if ((i % 2 == 0)); then v=v3; else
		v=$good
		[[ $good == v2 ]] && good=v1 || good=v2
	fi
	plan=$E2E_RUN/soak-$i.yaml
	plan_render "$SOAK_DIR/plans/soak.yaml" "$plan" V="$v" VERSION="${v#v}.0.0" || fail "plan $i"
	t0=$(e2e_now_ms)
	id=$(dep_submit "$plan") || soak_fail "deployment $i ($v) was not accepted"
	chaos "$id"
	heal_now
	st=$(dep_wait_final "$id" 300) || soak_fail "deployment $i ($id, $v) is stuck in $(dep_state "$id")"
	OUTCOMES[$st]=$((${OUTCOMES[$st]:-0} + 1))
	check_after "$id" "$v"
	DONE=$i
	echo "soak: $i/$SOAK_DEPLOYMENTS $id $v $st in $((($(e2e_now_ms) - t0) / 1000))s, faults so far $(faults_total), checks $CHECKS"
done
((DONE > 0)) || soak_fail "no deployment ran"
check_no_leaks
soak_summary
