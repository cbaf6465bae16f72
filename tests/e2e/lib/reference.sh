# shellcheck shell=bash
# reference.sh: the runbook's reference system on the harness, deployments
# through droverd, and the checks every scenario makes.
#
# Hosts (REF_HOSTS): core-1 core-2 supporting-1 supporting-2 ui-1 ui-2 db-1.
# Services and their ports on every host of their tier: core and supporting
# run three services each on 8080, 8081, 8082 (in tier order); ui runs
# api-gateway on 8080 and web-dashboard on 9080 (blue, and the rolling
# slot "") or 9081 (green). db-1 runs no service: it runs the hooks.
#
# db-1's filesystem: the hooks run on the agent's host, so the database tool
# must be there. The harness gives db-1's agent a mount namespace of its own
# in which $E2E_RUN/fs/db-1/bin is mounted on /usr/local/bin (it holds
# berrys-db, tests/fixtures/berrys-db.sh) and $E2E_RUN/fs/db-1/srv on /srv
# (the SQLite database /srv/berrys/berrys.db, schema 41 with two rows, and
# its backups in /srv/berrys/backups). The plans name the production paths;
# nothing is written outside the run directory. From the test (root mount
# namespace) the database is $(dbhost_db).
#
#   ref_up [--no-deploy]       the whole bring-up: network of REF_HOSTS,
#                              registry with the 24 images, HAProxy with the
#                              two ui backends, db-1's filesystem, droverd,
#                              seven agents; then release 1 deployed (and
#                              checked) unless --no-deploy
#   plan_render TEMPLATE OUT [KEY=VALUE...]   a plan from tests/e2e/plans/
#                              TEMPLATE (a name or a path): @REGISTRY@,
#                              @CONTROL@, @HAPROXY_SOCK@, @DIGEST_<svc>_<vN>@
#                              and the KEY=VALUEs (as @KEY@) are replaced; an
#                              unreplaced @NAME@ left over is an error
#   drover_api METHOD PATH [CURL ARGS]   the API with the admin token, from the
#                              control namespace; body on stdout, fails on >= 400
#   dep_submit PLAN            POST it (drover deploy --json); prints the id
#   dep_get ID / dep_state ID  the deployment object / its state
#   dep_wait_state ID TIMEOUT_S STATE...   until it is in one of the STATEs
#   dep_wait_final ID TIMEOUT_S            until it is final; prints the state
#   dep_wait_host ID SERVICE HOST TIMEOUT_S STATE...  until that host is in
#                              one of the STATEs in the deployment object
#   dep_deploy PLAN EXPECT [TIMEOUT_S]   drover deploy PLAN --wait, checks the
#                              exit status matches EXPECT (a final state);
#                              sets DEP_ID; the progress lines go to
#                              $E2E_RUN/deploy-<ms>.json.progress
#   svc_port SERVICE [SLOT]    the port of SERVICE (in SLOT)
#   svc_hosts SERVICE          its hosts, one per line
#   host_version HOST PORT     GET /version inside HOST's namespace ("" when
#                              nothing answers)
#   assert_fleet VERSION [SERVICE=VERSION...]   every service on each of its
#                              hosts answers exactly VERSION (v1, v2, v3) and
#                              no other version answers on any of its ports
#   assert_events ID           the event history of the deployment is complete
#   assert_converged           every agent connected, nothing unacknowledged,
#                              reported releases = what runs (v1 <-> 1.0.0)
#   dbhost_prepare HOST / dbhost_db / db_sql SQL   the database host (db-1)
#   ref_check_final ID STATE VERSION [SERVICE=VERSION...]   the four checks
#                              of a scenario at once: final state, fleet,
#                              events, convergence

REF_HOSTS=(core-1 core-2 supporting-1 supporting-2 ui-1 ui-2 db-1)
REF_PLANS=${REF_PLANS:-$E2E_DIR/plans}
REF_DB_HOST=db-1
DEP_ID=

# ---- topology ----

svc_port() {
	case $1 in
	project-coordinator | planning-system | api-gateway) echo 8080 ;;
	agent-orchestrator | tool-integration) echo 8081 ;;
	model-orchestration | service-integration) echo 8082 ;;
	web-dashboard) if [[ ${2:-} == green ]]; then echo 9081; else echo 9080; fi ;;
	*)
		echo "e2e: unknown service '$1'" >&2
		return 1
		;;
	esac
}

# Every port SERVICE may answer on (blue-green: both slots).
_svc_ports() {
	if [[ $1 == web-dashboard ]]; then echo "9080 9081"; else svc_port "$1"; fi
}

svc_hosts() {
	local t
	t=$(tier_of "$1") || return 1
	echo "$t-1"
	echo "$t-2"
}

# ---- the database host ----

dbhost_db() { echo "$E2E_RUN/fs/$REF_DB_HOST/srv/berrys/berrys.db"; }

# db_sql SQL: run SQL on db-1's database (read-only use in checks).
db_sql() { sqlite3 -bail -batch "$(dbhost_db)" "$1"; }

# dbhost_prepare HOST: the host's /usr/local/bin and /srv (see above);
# drover_agent_start then runs its agent in a mount namespace with them.
dbhost_prepare() {
	local host=$1 fs=$E2E_RUN/fs/$1
	[[ -d /usr/local/bin && -d /srv ]] || {
		echo "e2e: /usr/local/bin and /srv must exist (mount points for $host's files)" >&2
		return 1
	}
	command -v unshare >/dev/null || {
		echo "e2e: unshare (util-linux) is missing" >&2
		return 1
	}
	mkdir -p "$fs/bin" "$fs/srv/berrys" || return 1
	install -m 0755 "$E2E_ROOT/tests/fixtures/berrys-db.sh" "$fs/bin/berrys-db" || return 1
	"$fs/bin/berrys-db" --db "$fs/srv/berrys/berrys.db" init >/dev/null || return 1
	printf '%s /usr/local/bin\n%s /srv\n' "$fs/bin" "$fs/srv" >"$fs/mounts"
}

# ---- bring-up ----

ref_require() {
	e2e_require_root
	e2e_require_tools curl jq sqlite3 haproxy skopeo umoci unshare
	local b
	for b in droverd drover-agent drover berry-svc drv-haproxy-cmd; do
		e2e_bin "$b" >/dev/null || skip "$b is not built (cmake --build build)"
	done
}

ref_up() {
	local t0 t1
	t0=$(e2e_now_ms)
	net_up "${REF_HOSTS[@]}" || fail "net_up"
	registry_up || fail "registry_up"
	images_build || fail "images_build"
	images_push || fail "images_push"
	t1=$(e2e_now_ms)
	haproxy_reference ui-1 ui-2 || fail "haproxy_reference"
	haproxy_up || fail "haproxy_up"
	dbhost_prepare "$REF_DB_HOST" || fail "dbhost_prepare"
	drover_control_init || fail "droverd init"
	drover_control_start || fail "droverd start"
	drover_agents_up "${REF_HOSTS[@]}" || fail "agents did not all connect"
	[[ $(in_ns control curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
		-H "Authorization: Bearer $(cat "$DROVER_TOKEN_FILE")" "$DROVER_ADDR/v1/deployments") == 200 ]] ||
		skip "droverd does not serve /v1/deployments (no deployment engine in this build): deployments NOT tested"
	e2e_log "bring-up: $(($(e2e_now_ms) - t0)) ms (images $((t1 - t0)) ms)"
	[[ ${1:-} == --no-deploy ]] && return 0
	plan_render berrys-v1.yaml "$E2E_RUN/berrys-v1.yaml" || fail "plan v1"
	dep_deploy "$E2E_RUN/berrys-v1.yaml" succeeded 240 || fail "release 1 did not deploy"
	assert_fleet v1
	e2e_log "release 1 deployed in $(($(e2e_now_ms) - t0)) ms from the start"
}

# ---- plans ----

plan_render() {
	local tpl=$1 out=$2 kv s v expr=() left
	shift 2
	[[ $tpl == */* ]] || tpl=$REF_PLANS/$tpl
	[[ -f $tpl ]] || {
		echo "e2e: no plan template $tpl" >&2
		return 1
	}
	expr+=(-e "s|@REGISTRY@|$E2E_REGISTRY|g" -e "s|@CONTROL@|$(addr_of control)|g")
	expr+=(-e "s|@HAPROXY_SOCK@|$E2E_HAPROXY_SOCK|g")
	if [[ -f $E2E_RUN/images.state ]]; then
		while read -r s v d _; do
			expr+=(-e "s|@DIGEST_${s}_${v}@|$d|g")
		done <"$E2E_RUN/images.state"
	fi
	for kv in "$@"; do
		expr+=(-e "s|@${kv%%=*}@|${kv#*=}|g")
	done
	sed "${expr[@]}" "$tpl" >"$out" || return 1
	left=$(grep -o '@[A-Za-z0-9_-]*@' "$out" | sort -u | tr '\n' ' ')
	[[ -z $left ]] || {
		echo "e2e: $out: unreplaced placeholders: $left" >&2
		return 1
	}
}

# ---- the API ----

drover_api() {
	local method=$1 path=$2
	shift 2
	in_ns control curl -fsS --max-time 10 -X "$method" \
		-H "Authorization: Bearer $(cat "$DROVER_TOKEN_FILE")" "$@" "$DROVER_ADDR$path"
}

dep_submit() {
	local out id
	out=$(drover_cli deploy --json "$1") || {
		echo "e2e: drover deploy $1 failed: $out" >&2
		return 1
	}
	id=$(jq -r '.id // empty' <<<"$out")
	[[ -n $id ]] || {
		echo "e2e: drover deploy $1 printed no id: $out" >&2
		return 1
	}
	echo "$id"
}

dep_get() { drover_api GET "/v1/deployments/$1"; }
dep_state() { dep_get "$1" | jq -r .state; }

_dep_in_state() {
	local id=$1 st s
	shift
	st=$(dep_state "$id") || return 1
	for s in "$@"; do [[ $st == "$s" ]] && return 0; done
	echo "state is $st"
	return 1
}

dep_wait_state() {
	local id=$1 t=$2
	shift 2
	wait_for "deployment $id in state $*" "$t" _dep_in_state "$id" "$@"
}

dep_wait_final() {
	dep_wait_state "$1" "$2" succeeded failed rolled_back aborted || return 1
	dep_state "$1"
}

_dep_host_in() {
	local id=$1 svc=$2 host=$3 st s
	shift 3
	st=$(dep_get "$id" | jq -r --arg s "$svc" --arg h "$host" \
		'[.tiers[].services[] | select(.name == $s) | .hosts[] | select(.id == $h) | .state][0] // "none"')
	for s in "$@"; do [[ $st == "$s" ]] && return 0; done
	echo "$svc on $host is $st"
	return 1
}

dep_wait_host() {
	local id=$1 svc=$2 host=$3 t=$4
	shift 4
	wait_for "$svc on $host in state $*" "$t" _dep_host_in "$id" "$svc" "$host" "$@"
}

# dep_deploy PLAN EXPECT [TIMEOUT_S]: the CLI's --wait, as an operator runs it.
dep_deploy() {
	local plan=$1 want=$2 t=${3:-300} rc out exp
	case $want in
	succeeded) exp=0 ;;
	failed | rolled_back | aborted) exp=1 ;;
	*)
		echo "e2e: dep_deploy: bad expected state '$want'" >&2
		return 2
		;;
	esac
	out=$E2E_RUN/deploy-$(e2e_now_ms).json
	rc=0
	in_ns control timeout "$t" env DROVER_ADDR="$DROVER_ADDR" DROVER_TOKEN_FILE="$DROVER_TOKEN_FILE" \
		"$(e2e_bin drover)" deploy --wait --json "$plan" >"$out" 2>"$out.progress" || rc=$?
	DEP_ID=$(jq -r '.id // empty' "$out" 2>/dev/null)
	[[ -n $DEP_ID ]] || {
		echo "e2e: drover deploy --wait $plan exited $rc without a deployment:" >&2
		tail -n 20 "$out.progress" >&2
		return 1
	}
	[[ $(jq -r .state "$out") == "$want" && $rc == "$exp" ]] || {
		echo "e2e: $DEP_ID ended $(jq -r '.state + " (" + .reason + ")"' "$out") with exit $rc; expected $want (exit $exp)" >&2
		return 1
	}
}

# ---- checks ----

host_version() {
	in_ns "$1" curl -s --max-time 2 "http://127.0.0.1:$2/version" 2>/dev/null || true
}

# assert_fleet VERSION [SERVICE=VERSION...]
assert_fleet() {
	local def=$1 svc h p want got seen kv bad=0
	shift
	declare -A exp=()
	for kv in "$@"; do exp[${kv%%=*}]=${kv#*=}; done
	for svc in "${E2E_SERVICES[@]}"; do
		want=${exp[$svc]:-$def}
		for h in $(svc_hosts "$svc"); do
			seen=""
			for p in $(_svc_ports "$svc"); do
				got=$(host_version "$h" "$p")
				[[ -z $got ]] && continue
				seen+="$got@$p "
				if [[ $got != "$want" ]]; then
					echo "e2e: $svc on $h answers $got on :$p (expected only $want)" >&2
					bad=1
				fi
			done
			[[ -n $seen ]] || {
				echo "e2e: $svc on $h: nothing answers on $(_svc_ports "$svc")" >&2
				bad=1
			}
		done
	done
	((bad == 0)) || fail "the fleet runs versions it should not"
	ok "fleet: every service answers ${def}${*:+ ($*)} on each of its hosts, no other version"
}

# The deployment's events, one JSON object per line.
dep_events() {
	drover_api GET "/v1/events?deployment=$1&follow=0&tail=1000" |
		sed -n 's/^data: //p'
}

# assert_events ID: the history tells the whole story of the deployment:
# created and started first, the final state last, one "host" event for the
# final state of every host of every service the deployment touched, one
# "hook" event per hook run, and increasing ids.
assert_events() {
	local id=$1 dep ev final missing kinds
	dep=$(dep_get "$id") || fail "GET deployment $id"
	ev=$(dep_events "$id") || fail "GET /v1/events?deployment=$id"
	final=$(jq -r .state <<<"$dep")
	[[ -n $ev ]] || fail "no events for $id"
	kinds=$(jq -r .kind <<<"$ev" | tr '\n' ' ')
	jq -se 'map(.id) | . == (sort | unique)' <<<"$ev" >/dev/null ||
		fail "$id: event ids not increasing: $(jq -r .id <<<"$ev" | tr '\n' ' ')"
	jq -se --arg d "$id" 'all(.deployment_id == $d)' <<<"$ev" >/dev/null ||
		fail "$id: an event of another deployment in its history"
	[[ $(jq -rs '.[0].kind' <<<"$ev") == deployment_created ]] ||
		fail "$id: first event is not deployment_created: $kinds"
	grep -qw started <<<"$kinds" || fail "$id: no 'started' event: $kinds"
	case $final in
	succeeded | failed | rolled_back | aborted)
		grep -qw "$final" <<<"$kinds" || fail "$id: no '$final' event: $kinds"
		jq -se --arg f "$final" 'map(select(.kind == "state")) | last | .data.state == $f' \
			<<<"$ev" >/dev/null || fail "$id: the last state event is not $final"
		;;
	*) fail "$id is not final ($final)" ;;
	esac
	# every host's final state was announced
	missing=$(jq -r --slurpfile ev <(jq -c . <<<"$ev") '
		[.tiers[].services[] as $s | $s.hosts[] | select(.state != "pending") |
		 {service: $s.name, host: .id, state: .state}] |
		map(select(. as $h | [$ev[] | select(.kind == "host") | .data |
		    select(.service == $h.service and .host == $h.host)] |
		    (length == 0 or (last.state != $h.state)))) |
		map("\(.service)@\(.host)=\(.state)") | join(" ")' <<<"$dep")
	[[ -z $missing ]] || fail "$id: host states without a matching last event: $missing"
	missing=$(jq -r --slurpfile ev <(jq -c . <<<"$ev") '
		[(.hooks // [])[] | select(.state != "pending") | .name] |
		map(select(. as $n | [$ev[] | select(.kind == "hook") | .data |
		    select((.name // .hook) == $n)] | length == 0)) | join(" ")' <<<"$dep")
	[[ -z $missing ]] || fail "$id: hooks without an event: $missing"
	ok "$id: event history complete ($(wc -l <<<"$ev") events, ends $final)"
}

# Agents: connected, every instruction acknowledged, releases as they run.
_ref_converged() {
	local a h svc want got rel
	a=$(drover_api GET /v1/agents) || return 1
	for h in "${REF_HOSTS[@]}"; do
		jq -e --arg h "$h" '.agents[] | select(.id == $h) |
			.state == "connected" and (.acked_seq + 1 >= .next_seq)' <<<"$a" >/dev/null || {
			echo "$h: $(jq -c --arg h "$h" '.agents[] | select(.id == $h) |
				{state, acked_seq, next_seq}' <<<"$a")"
			return 1
		}
	done
	for svc in "${E2E_SERVICES[@]}"; do
		for h in $(svc_hosts "$svc"); do
			got=""
			for p in $(_svc_ports "$svc"); do
				got=$(host_version "$h" "$p")
				[[ -n $got ]] && break
			done
			want="${got#v}.0.0"
			rel=$(jq -c --arg h "$h" --arg s "$svc" '.agents[] | select(.id == $h) |
				[.releases[] | select(.service == $s and .state == "running")]' <<<"$a")
			jq -e --arg v "$want" 'length >= 1 and any(.version == $v and .healthy)' \
				<<<"$rel" >/dev/null || {
				echo "$svc on $h runs $got, the agent reports $rel"
				return 1
			}
		done
	done
}

assert_converged() {
	wait_for "agents converged" 30 _ref_converged || fail "agents did not converge"
	ok "agents converged: all connected, nothing unacknowledged, reported releases = running ones"
}

# ref_check_final ID STATE VERSION [SERVICE=VERSION...]
ref_check_final() {
	local id=$1 want=$2 st
	shift 2
	st=$(dep_wait_final "$id" 240) || fail "$id did not end"
	[[ $st == "$want" ]] || fail "$id ended $st ($(dep_get "$id" | jq -r .reason)), expected $want"
	ok "$id ended $want$(dep_get "$id" | jq -r 'if .reason != "" then " (" + .reason + ")" else "" end')"
	assert_fleet "$@"
	assert_events "$id"
	assert_converged
}

# ---- scenarios ----

# scenario NAME TEXT: start scenario NAME of a test file; false (skip it) when
# E2E_ONLY names other scenarios (E2E_ONLY="kill stop" runs only those).
scenario() {
	if [[ -n ${E2E_ONLY:-} && " $E2E_ONLY " != *" $1 "* ]]; then
		e2e_log "scenario $1 skipped (E2E_ONLY=$E2E_ONLY)"
		return 1
	fi
	echo "# scenario $1: $2"
	budget_step "scenario $1"
}

# plan_pin FILE VERSION: pin every berrys image of VERSION (vN) in the
# rendered plan FILE by digest (no tag to resolve when it is submitted).
plan_pin() {
	local s ref expr=()
	for s in "${E2E_SERVICES[@]}"; do
		ref=$(image_ref "$s" "$2") || return 1
		expr+=(-e "s|$E2E_REGISTRY/berrys/$s:$2\$|$ref|")
	done
	sed -i "${expr[@]}" "$1"
	! grep -q "berrys/[a-z-]*:$2\$" "$1" || {
		echo "e2e: plan_pin: tags left in $1" >&2
		return 1
	}
}

# dep_svc ID SERVICE JQ: JQ applied to SERVICE's object in the deployment.
dep_svc() {
	dep_get "$1" | jq -r --arg s "$2" "[.tiers[].services[] | select(.name == \$s)][0] | $3"
}

# dep_hosts_touched ID: "service@host=state" for every host the deployment
# went beyond prestage on (an event says it was stopping, starting, ...).
dep_hosts_touched() {
	dep_events "$1" | jq -rs '[.[] | select(.kind == "host") | .data |
		select(.state | IN("stopping", "starting", "verifying", "succeeded",
		                   "rolling_back", "rolled_back")) |
		"\(.service)@\(.host)=\(.state)"] | unique | join(" ")'
}

# restart_droverd [HOST...]: SIGKILL droverd, start it again, wait until
# the agents of HOSTs (default: all) are connected again.
restart_droverd() {
	local hosts=("$@")
	((${#hosts[@]})) || hosts=("${REF_HOSTS[@]}")
	proc_signal droverd KILL || return 1
	proc_wait_gone droverd 10 || return 1
	drover_control_start || return 1
	drover_wait_agents connected 30 "${hosts[@]}"
}
