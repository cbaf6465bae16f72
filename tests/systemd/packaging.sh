#!/usr/bin/env bash
# shellcheck disable=SC2016 # ${Version} is for dpkg-query
# packaging.sh (CTest packaging_systemd): the Debian packages under a booted
# systemd. Two machines (systemd-nspawn, systemd as PID 1) in a test network:
# "coord" gets drover-coordinator, "web-1" drover-agent, both with
# `apt-get install ./FILE.deb` as an operator would (their dependencies are
# preinstalled in the cached root file system: the machines reach no
# mirror). Then, as docs/install.md says:
#
#   systemctl enable --now; an enrollment token; the agent enrolls;
#   a deployment (berry-svc from an oci-layout: image) succeeds;
#   `systemctl restart droverd` and `systemctl restart drover-agent` in the
#   middle of deployments: both deployments still succeed;
#   `systemctl reload droverd` reopens its log file;
#   the sandbox of droverd.service lets it POST webhooks to another host;
#   droverd.service on PostgreSQL (a throwaway server, tests/lib/pg.sh): the
#   sandbox lets it lead on a unix socket and on loopback TCP;
#   `journalctl -u` shows both daemons' logs;
#   an upgrade to a later revision (the same packages, version raised) keeps
#   keys, tokens, the database and the enrolled agent, restarts the daemons;
#   `apt-get remove` stops the services and keeps state, `purge` deletes it.
#
#   sudo bash tests/systemd/packaging.sh   (E2E_BUILD_DIR=build by default)
# Exit 0 passed, 1 failed, 77 skipped (not root, tools missing).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=/dev/null # (the e2e harness; checked on its own)
source "$HERE/../e2e/lib/e2e.sh"
# shellcheck source=/dev/null # (lib/machine.sh, checked on its own)
source "$HERE/lib/machine.sh"

machine_require
e2e_require_tools cpack dpkg-deb umoci jq curl
T0=$(e2e_now_ms)
C=/etc/drover/coordinator
A=/etc/drover/agent

net_up coord web-1 || fail "net_up"
COORD=$(addr_of coord)
WEB=$(addr_of web-1)

# --- the packages: this build's, and a later revision for the upgrade ------
PKG=$E2E_RUN/packages
mkdir -p "$PKG/v1" "$PKG/v2"
sd_packages "$PKG/v1" || fail "the packages"
agent_deb=$(echo "$PKG"/v1/drover-agent_*.deb)
coord_deb=$(echo "$PKG"/v1/drover-coordinator_*.deb)
[[ -f $agent_deb && -f $coord_deb ]] || fail "cpack made no packages"
V1=$(dpkg-deb -f "$agent_deb" Version)
# Revision 2: the same files with the version raised, as a new release
# would ship them.
for deb in "$agent_deb" "$coord_deb"; do
	dpkg-deb -R "$deb" "$PKG/tree"
	sed -i 's/^Version: \(.*\)-\([0-9]*\)$/Version: \1-\2+sdtest1/' "$PKG/tree/DEBIAN/control"
	dpkg-deb -b --root-owner-group "$PKG/tree" "$PKG/v2/" >/dev/null
	rm -rf "$PKG/tree"
done
V2=$(dpkg-deb -f "$PKG"/v2/drover-agent_*.deb Version)
ok "packages $V1 and $V2 built ($(basename "$agent_deb"), $(basename "$coord_deb"))"

# What the packages need from Debian is preinstalled in the machines (they
# reach no mirror): every Depends must be in the machines' package list.
mapfile -t DEPS < <(for deb in "$agent_deb" "$coord_deb"; do dpkg-deb -f "$deb" Depends; done |
	tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/[[:space:]]//g' | grep -v '^$' | sort -u)
for d in "${DEPS[@]}"; do
	[[ " ${SD_DROVER_PKGS[*]} " == *" $d "* ]] ||
		fail "the packages depend on $d, which SD_DROVER_PKGS (tests/systemd/lib/machine.sh) lacks"
done
rootfs_ensure "${SD_DROVER_PKGS[@]}" || fail "rootfs"
ok "root file system $SD_ROOTFS ready ($((($(e2e_now_ms) - T0) / 1000)) s so far)"

# --- the image: berry-svc v1/v2 as an OCI layout, read-only in web-1 --------
IMG=$MKIMAGE_CACHE/systemd-images/hello
for v in v1 v2; do mkimage_berry "$IMG" hello $v >/dev/null || fail "image $v"; done
layout_digest() {
	jq -r --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
		"$IMG/index.json"
}

# PostgreSQL for droverd.service's HA check below (tests/lib/pg.sh): a
# throwaway server started later in coord's network namespace (its TCP port
# on coord's loopback), its socket directory bound into coord.
# shellcheck source=/dev/null # (tests/lib/pg.sh, checked on its own)
source "$HERE/../lib/pg.sh"
PGD=$E2E_RUN/pg
mkdir -p "$PGD/sock"
machine_up coord --bind-ro="$PKG:/srv/packages" --bind="$PGD/sock:/run/drover-pg"
machine_up web-1 --bind-ro="$PKG:/srv/packages" --bind-ro="$IMG:/srv/images/hello"
# On a failure: what the daemons and the coordinator said, before the
# machines go (at-exit steps run newest first). $rc is the exit status
# _e2e_on_exit holds.
diag() {
	[[ ${rc:-0} != 0 && ${rc:-0} != 77 ]] || return 0
	echo "---- journal of droverd (coord) ----" >&2
	msh coord journalctl -u droverd --no-pager -q -n 60 >&2 || true
	echo "---- journal of drover-agent (web-1) ----" >&2
	msh web-1 journalctl -u drover-agent --no-pager -q -n 60 >&2 || true
	echo "---- newest deployment ----" >&2
	msh coord env DROVER_TOKEN_FILE=$C/admin.token drover status >&2 || true
	# SD_HOLD=SECONDS: keep the machines up that long to look around
	# (msh-like: nsenter -t PID -a, PIDs in $E2E_RUN/machines/*/nspawn.pid)
	if [[ -n ${SD_HOLD:-} ]]; then
		echo "holding the machines for $SD_HOLD s: $E2E_RUN" >&2
		sleep "$SD_HOLD"
	fi
}
e2e_at_exit diag
machine_wait coord 90 || fail "coord did not boot"
machine_wait web-1 90 || fail "web-1 did not boot"
ok "machines coord ($COORD) and web-1 ($WEB) booted, systemd is PID 1"
net_root_guarded || fail "the root namespace can reach the test network"

# --- coordinator: install, enable --now ----------------------------------------
msh coord env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	"/srv/packages/v1/$(basename "$coord_deb")" >"$E2E_RUN/logs/coord-install.log" 2>&1 ||
	fail "apt-get install drover-coordinator: $(tail -n 20 "$E2E_RUN/logs/coord-install.log")"
grep -q "created $C" "$E2E_RUN/logs/coord-install.log" || fail "postinst did not run droverd init"
# the webhook receiver below is the one URL plans may make droverd request
msh coord sed -i "s|^  allow: .*|  allow: [\"http://$WEB:9099/deploy\"]|" $C/droverd.yaml
msh coord grep -qF "  allow: [\"http://$WEB:9099/deploy\"]" $C/droverd.yaml || fail "cannot set outbound.allow"
msh coord systemctl enable --now droverd >/dev/null 2>&1 || fail "systemctl enable --now droverd"
# the package may have started droverd already: a changed config needs a restart
msh coord systemctl restart droverd || fail "systemctl restart droverd (config changed)"
[[ $(msh coord systemctl is-active droverd) == active ]] || fail "droverd is not active"
[[ $(msh coord systemctl is-enabled droverd) == enabled ]] || fail "droverd is not enabled"
[[ $(msh coord systemctl show -P User droverd) == drover ]] || fail "droverd does not run as drover"
[[ $(msh coord ps -o user= -p "$(msh coord systemctl show -P MainPID droverd)") == drover ]] ||
	fail "droverd's process is not user drover"
ok "drover-coordinator installed: droverd active, enabled, running as drover"

dv() { msh coord env DROVER_TOKEN_FILE=$C/admin.token drover "$@"; }
_droverd_api() { dv agents --json >/dev/null; }
wait_for "droverd API" 30 _droverd_api || fail "drover agents fails"
TOKEN=$(msh coord runuser -u drover -- droverd enroll-token create sd-rollout \
	--config $C/droverd.yaml --ttl 1h) || fail "droverd enroll-token create"
[[ $TOKEN == drvenr* ]] || fail "enroll-token printed '$TOKEN'"
ok "enrollment token made as user drover next to the running droverd"

# --- agent: install, configure, enable --now, enroll ----------------------------
msh web-1 env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	"/srv/packages/v1/$(basename "$agent_deb")" >"$E2E_RUN/logs/agent-install.log" 2>&1 ||
	fail "apt-get install drover-agent: $(tail -n 20 "$E2E_RUN/logs/agent-install.log")"
grep -q 'not configured yet, so not started' "$E2E_RUN/logs/agent-install.log" ||
	fail "the agent's postinst did not say it is unconfigured"
[[ $(msh web-1 systemctl is-active drover-agent || true) != active ]] || fail "unconfigured agent started"
pid=$(machine_pid coord)
machine_cp "/proc/$pid/root$C/coordinator.pub" web-1 "$A/coordinator.pub"
machine_cp "/proc/$pid/root$C/tls.crt" web-1 "$A/coordinator.crt"
msh web-1 sh -c "umask 077; echo '$TOKEN' >$A/enroll.token"
msh web-1 drover-agent init --dir $A --coordinator "tls+tcp://$COORD:7700" \
	--coordinator-key $A/coordinator.pub --tls-ca $A/coordinator.crt \
	--enroll-token-file $A/enroll.token --id web-1 --label role=web \
	>"$E2E_RUN/logs/agent-init.log" 2>&1 || fail "drover-agent init: $(cat "$E2E_RUN/logs/agent-init.log")"
msh web-1 systemctl enable --now drover-agent >/dev/null 2>&1 || fail "systemctl enable --now drover-agent"
[[ $(msh web-1 systemctl is-active drover-agent) == active ]] || fail "drover-agent is not active"
agent_state() { dv agents --json | jq -r '.[] | select(.id == "web-1") | .state'; }
_connected() { [[ $(agent_state) == connected ]]; }
wait_for "web-1 enrolled and connected" 30 _connected || fail "web-1 did not enroll"
ok "drover-agent installed, configured, enabled --now; web-1 enrolled with the token"

# --- a webhook receiver on web-1 (outside droverd's machine) ------------------
BERRY=$(mkimage_berry_bin)
machine_cp "$BERRY" web-1 /usr/local/bin/berry-svc
msh web-1 chmod 0755 /usr/local/bin/berry-svc
msh web-1 systemd-run --unit=hooks-sink --property=StandardOutput=file:/var/log/hooks.log \
	/usr/local/bin/berry-svc --name hooks --port 9099 >/dev/null 2>&1 || fail "webhook receiver"

# --- deployments ------------------------------------------------------------------
# plan VERSION START_DELAY_MS: hello on web-1 from the layout, webhooks to web-1.
plan() {
	local d
	d=$(layout_digest "$1")
	[[ $d == sha256:* ]] || fail "no digest for hello:$1 in $IMG"
	cat <<EOF
deployment: sdtest
version: "$1"
tiers:
  - name: app
    services:
      - name: hello
        image: oci-layout:/srv/images/hello:$1@$d
        hosts: [web-1]
        command: [/bin/berry-svc, --name, hello, --port, "8080"]
        env: { BERRY_START_DELAY_MS: "$2" }
        health: { http: { port: 8080, path: /health }, interval: 500ms, deadline: 60s }
notify:
  - webhook: "http://$WEB:9099/deploy"
EOF
}
put_plan() { plan "$1" "$2" | msh coord sh -c "cat >/root/plan-$1.yaml"; }
deploy_submit() { dv deploy --json "/root/plan-$1.yaml" | jq -r .id; }
dep_state() { dv status --json "$1" 2>/dev/null | jq -r .state; }
_dep_final() {
	local s
	s=$(dep_state "$1")
	case $s in succeeded | failed | rolled_back | aborted) return 0 ;; esac
	echo "state $s"
	return 1
}
_dep_running() { [[ $(dep_state "$1") == running ]]; }
hello_version() { msh web-1 curl -fsS --max-time 2 http://127.0.0.1:8080/version 2>/dev/null; }

put_plan v1 0
dv deploy --wait --json /root/plan-v1.yaml >"$E2E_RUN/dep1.json" 2>"$E2E_RUN/logs/dep1.log" ||
	fail "deployment v1: $(cat "$E2E_RUN/dep1.json") $(tail "$E2E_RUN/logs/dep1.log")"
[[ $(jq -r .state "$E2E_RUN/dep1.json") == succeeded ]] || fail "v1: $(cat "$E2E_RUN/dep1.json")"
[[ $(hello_version) == v1 ]] || fail "hello answers '$(hello_version)', want v1"
ok "deployment v1 succeeded; hello v1 answers on web-1"
_hooked() { msh web-1 grep -q 'POST /deploy' /var/log/hooks.log; }
wait_for "webhook POSTs from the sandboxed droverd" 20 _hooked || fail "no webhook reached web-1"
ok "droverd.service's sandbox lets it POST webhooks to another host ($(msh web-1 grep -c 'POST /deploy' /var/log/hooks.log) POSTs)"

# droverd restarted while a deployment runs (the new version is slow to start)
put_plan v2 4000
id=$(deploy_submit v2) || fail "submit v2"
wait_for "v2 running" 20 _dep_running "$id" || fail "v2 never ran"
old=$(msh coord systemctl show -P MainPID droverd)
msh coord systemctl restart droverd || fail "systemctl restart droverd"
new=$(msh coord systemctl show -P MainPID droverd)
[[ $new != "$old" && $new != 0 ]] || fail "droverd's MainPID did not change ($old -> $new)"
wait_for "v2 final after droverd restart" 90 _dep_final "$id" || fail "v2 did not finish"
[[ $(dep_state "$id") == succeeded ]] || fail "v2 after droverd restart: $(dep_state "$id")"
[[ $(hello_version) == v2 ]] || fail "hello answers '$(hello_version)', want v2"
ok "systemctl restart droverd mid-deployment: the deployment still succeeded (v2 runs)"

# the agent restarted while a deployment runs. The stopping agent cuts its
# health gate short but does not fail the step: the agent that systemd
# starts again resumes it from its state (docs/agent.md, "What happens on a
# crash"), so the deployment succeeds and v1 runs.
put_plan v1 4000
id=$(deploy_submit v1) || fail "submit v1"
wait_for "v1 running" 20 _dep_running "$id" || fail "v1 never ran"
sleep 1
msh web-1 systemctl restart drover-agent || fail "systemctl restart drover-agent"
wait_for "v1 final after agent restart" 120 _dep_final "$id" || fail "v1 did not finish"
final=$(dep_state "$id")
want=v1
[[ $final == succeeded ]] || fail "v1 after an agent restart ended $final, not succeeded: $(dv status "$id" 2>&1 | tail -5)"
_answers() { [[ $(hello_version) == "$1" ]]; }
wait_for "hello answering $want" 20 _answers "$want" || fail "after $final hello answers '$(hello_version)', want $want"
_connected_again() { _connected; }
wait_for "web-1 connected after its restart" 30 _connected_again || fail "web-1 did not reconnect"
svc_pid=$(msh web-1 sh -c "ss -Hltnp 'sport = :8080' | grep -o 'pid=[0-9]*' | head -n 1")
msh web-1 systemctl restart drover-agent || fail "systemctl restart drover-agent (2)"
[[ $(msh web-1 sh -c "ss -Hltnp 'sport = :8080' | grep -o 'pid=[0-9]*' | head -n 1") == "$svc_pid" ]] ||
	fail "restarting the agent restarted its service (KillMode=process)"
ok "systemctl restart drover-agent mid-deployment: the deployment ended $final, hello runs $want; a restart keeps the service ($svc_pid) running"

# reload: SIGHUP reopens droverd's log file (log.file in droverd.yaml)
LOGF=/var/lib/drover/coordinator/droverd.log
msh coord sed -i "s|^  # file:.*|  file: \"$LOGF\"|" $C/droverd.yaml
msh coord grep -q "^  file: \"$LOGF\"" $C/droverd.yaml || fail "cannot set log.file in droverd.yaml"
msh coord systemctl restart droverd || fail "restart with log_file"
pid_before=$(msh coord systemctl show -P MainPID droverd)
msh coord mv $LOGF $LOGF.1 ||
	fail "droverd.log was not written"
msh coord systemctl reload droverd || fail "systemctl reload droverd"
_reopened() { msh coord grep -q 'log file reopened' $LOGF; }
wait_for "droverd.log reopened" 10 _reopened || fail "reload did not reopen the log file"
[[ $(msh coord systemctl show -P MainPID droverd) == "$pid_before" ]] || fail "reload restarted droverd"
msh coord sed -i "s|^  file: .*|  # file:|" $C/droverd.yaml
msh coord systemctl restart droverd
ok "systemctl reload droverd reopens its log file (same process)"

# journal
msh coord journalctl -u droverd --no-pager -q | grep -c . >/dev/null || fail "journalctl -u droverd is empty"
msh web-1 journalctl -u drover-agent --no-pager -q | grep -ci 'drover-agent' >/dev/null || fail "journalctl -u drover-agent is empty"
ok "journalctl -u droverd / -u drover-agent show the daemons' logs"

# --- upgrade to revision 2
# shellcheck disable=SC2016 # ${Version} is dpkg-query's -------------------------------------------------------
keep_c=("$C/coordinator.key" "$C/coordinator.pub" "$C/admin.token" "$C/tls.key" "$C/droverd.yaml")
sum_c=$(msh coord sha256sum "${keep_c[@]}")
sum_a=$(msh web-1 sh -c "sha256sum $A/agent.yaml $A/*.key")
deps_before=$(dv history --json 2>/dev/null | jq length)
dpid=$(msh coord systemctl show -P MainPID droverd)
apid=$(msh web-1 systemctl show -P MainPID drover-agent)
msh coord env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	"/srv/packages/v2/$(basename "$PKG"/v2/drover-coordinator_*.deb)" >"$E2E_RUN/logs/coord-upgrade.log" 2>&1 ||
	fail "upgrade drover-coordinator: $(tail "$E2E_RUN/logs/coord-upgrade.log")"
msh web-1 env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	"/srv/packages/v2/$(basename "$PKG"/v2/drover-agent_*.deb)" >"$E2E_RUN/logs/agent-upgrade.log" 2>&1 ||
	fail "upgrade drover-agent: $(tail "$E2E_RUN/logs/agent-upgrade.log")"
[[ $(msh coord dpkg-query -W -f '${Version}' drover-coordinator) == "$V2" ]] || fail "coordinator not at $V2"
[[ $(msh web-1 dpkg-query -W -f '${Version}' drover-agent) == "$V2" ]] || fail "agent not at $V2"
[[ $(msh coord sha256sum "${keep_c[@]}") == "$sum_c" ]] || fail "the upgrade changed the coordinator's keys, token or config"
[[ $(msh web-1 sh -c "sha256sum $A/agent.yaml $A/*.key") == "$sum_a" ]] || fail "the upgrade changed the agent's key or config"
[[ $(msh coord systemctl show -P MainPID droverd) != "$dpid" ]] || fail "the upgrade did not restart droverd"
[[ $(msh web-1 systemctl show -P MainPID drover-agent) != "$apid" ]] || fail "the upgrade did not restart the agent"
wait_for "droverd API after upgrade" 30 _droverd_api || fail "droverd API after the upgrade"
wait_for "web-1 reconnected after upgrade" 30 _connected || fail "web-1 not connected after the upgrade: $(agent_state)"
[[ $(dv history --json 2>/dev/null | jq length) == "$deps_before" ]] || fail "deployment history changed in the upgrade"
[[ $(hello_version) == "$want" ]] || fail "hello stopped answering across the upgrade"
next=v2
[[ $want == v1 ]] || next=v1
put_plan $next 0
dv deploy --wait --json /root/plan-$next.yaml >"$E2E_RUN/dep-up.json" 2>/dev/null ||
	fail "deployment after the upgrade: $(cat "$E2E_RUN/dep-up.json")"
[[ $(hello_version) == "$next" ]] || fail "after upgrade hello answers '$(hello_version)', want $next"
ok "upgrade $V1 -> $V2 kept keys, admin token, config, database ($deps_before deployments) and the enrolled agent; a deployment works after it"

# --- droverd.service on PostgreSQL: the unit's sandbox (ProtectSystem=strict,
# PrivateTmp, RestrictAddressFamilies...) lets it reach the server on a unix
# socket and on loopback TCP (docs/ha.md) ------------------------------------
PG_PORT=5433
PG_NETNS=$(ns_of coord) PG_LISTEN=127.0.0.1 pg_start "$PGD" >"$E2E_RUN/logs/pg-start.log" 2>&1 ||
	fail "PostgreSQL: $(cat "$E2E_RUN/logs/pg-start.log")"
e2e_at_exit pg_stop
pg_dsn() { # DSN: the group's store in coord's droverd.yaml (0600: it holds a DSN), restart
	msh coord sed -i -E "s|^( *)dsn: .*|\1dsn: \"$1\"|" $C/droverd.yaml
	msh coord chmod 600 $C/droverd.yaml
	msh coord systemctl restart droverd
}
_pg_leads() { [[ $(msh coord curl -s --max-time 2 http://127.0.0.1:7480/healthz | jq -r .role) == leader ]]; }
e=0
for dsn in "host=/run/drover-pg port=$PG_PORT dbname=postgres user=drover" \
	"host=127.0.0.1 port=$PG_PORT dbname=postgres user=drover"; do
	e=$((e + 1))
	pg_dsn "$dsn" || fail "systemctl restart droverd with dsn '$dsn'"
	wait_for "droverd on PostgreSQL ($dsn)" 60 _pg_leads ||
		fail "droverd does not lead on '$dsn': $(msh coord journalctl -u droverd -n 20 --no-pager)"
	[[ $(pg_sql "SELECT epoch FROM leader_lease") == "$e" ]] ||
		fail "lease row after '$dsn': $(pg_sql 'SELECT * FROM leader_lease')"
done
pg_dsn "" || fail "systemctl restart droverd on SQLite again"
wait_for "droverd API on SQLite" 30 _droverd_api || fail "droverd does not serve on SQLite again"
ok "droverd.service reaches PostgreSQL on a unix socket and on loopback TCP (leads, epochs 1 and 2); back on SQLite"

# --- remove, purge -----------------------------------------------------------------
msh web-1 env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q drover-agent >"$E2E_RUN/logs/agent-remove.log" 2>&1 ||
	fail "apt-get remove drover-agent"
[[ $(msh web-1 systemctl is-active drover-agent || true) != active ]] || fail "remove left drover-agent running"
msh web-1 test -f $A/agent.yaml -a -d /var/lib/drover/agent/state || fail "remove deleted the agent's state"
msh web-1 env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q drover-agent >"$E2E_RUN/logs/agent-purge.log" 2>&1 ||
	fail "apt-get purge drover-agent"
for p in $A /var/lib/drover/agent /var/log/drover-agent; do
	msh web-1 test ! -e "$p" || fail "purge left $p"
done
msh coord env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q drover-coordinator >"$E2E_RUN/logs/coord-remove.log" 2>&1 ||
	fail "apt-get remove drover-coordinator"
[[ $(msh coord systemctl is-active droverd || true) != active ]] || fail "remove left droverd running"
msh coord test -f $C/coordinator.key -a -f /var/lib/drover/coordinator/droverd.db || fail "remove deleted the coordinator's state"
msh coord env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q drover-coordinator >"$E2E_RUN/logs/coord-purge.log" 2>&1 ||
	fail "apt-get purge drover-coordinator"
for p in $C /var/lib/drover/coordinator; do
	msh coord test ! -e "$p" || fail "purge left $p"
done
msh coord getent passwd drover >/dev/null || fail "purge removed the drover user (docs say it stays)"
ok "apt-get remove stops the daemons and keeps their state; purge deletes it; the drover user stays"

ok "packaging_systemd passed in $((($(e2e_now_ms) - T0) / 1000)) s"
