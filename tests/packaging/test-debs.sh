#!/usr/bin/env bash
# test-debs.sh BUILD_DIR NOTIFY_WAIT: build the two Debian packages with CPack, lint them,
# and install, upgrade and purge them in a scratch root with
# `dpkg --root --force-script-chrootless` (maintainer scripts run on this host
# with DPKG_ROOT set; everything they do must stay inside the root). Checks
# files, units, users, owners and modes, conffiles, that an unconfigured agent
# is not started, that an upgrade keeps keys, state and config, and that
# purging one package removes its state and nothing of the other. The
# installed droverd is started the way its unit would: as user drover, /etc
# read-only, only its state directory writable, readiness by sd_notify (in
# private mount and network namespaces). Finally checks that the host itself
# was not touched.
set -euo pipefail
build=$(cd "$1" && pwd)
notify_wait=$2

skip()
{
	echo "SKIP: $*" >&2
	exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (dpkg --root, file owners): packages NOT tested"
for t in cpack dpkg dpkg-deb lintian systemd-sysusers systemd-tmpfiles unshare nsenter setpriv curl jq; do
	command -v "$t" >/dev/null 2>&1 || skip "$t not found (make deps installs it): packages NOT tested"
done

tmp=$(mktemp -d /tmp/drv-debs-XXXXXX)
daemon_pid="" agent_pid="" lintian_pid=""
cleanup()
{
	budget_end
	[ -z "$lintian_pid" ] || kill "$lintian_pid" 2>/dev/null || true
	# only what this test started: the daemons (by their recorded pids)
	for f in "$tmp/agent.pid" "$tmp/droverd.pid"; do
		[ ! -f "$f" ] || kill -KILL "$(cat "$f")" 2>/dev/null || true
	done
	if [ -n "${DRV_KEEP_TMP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
# shellcheck source=/dev/null # (tests/lib/budget.sh, checked on its own)
source "$(dirname "$0")/../lib/budget.sh"
budget_start
R=$tmp/root
fails=0
ok() { echo "ok: $*"; }
bad()
{
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}
check() # check DESCRIPTION COMMAND...
{
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
# mode and owner as "MODE USER:GROUP" with names from the root's own files
stat_in_root()
{
	local uid gid u g
	uid=$(stat -c %u "$1") gid=$(stat -c %g "$1")
	u=$(awk -F: -v id="$uid" '$3 == id { print $1; exit }' "$R/etc/passwd" 2>/dev/null)
	g=$(awk -F: -v id="$gid" '$3 == id { print $1; exit }' "$R/etc/group" 2>/dev/null)
	[ "$uid" = 0 ] && u=root
	[ "$gid" = 0 ] && g=root
	echo "$(stat -c %a "$1") ${u:-$uid}:${g:-$gid}"
}
expect_stat() # expect_stat PATH "MODE USER:GROUP"
{
	local got
	got=$(stat_in_root "$R$1" 2>/dev/null || echo missing)
	if [ "$got" = "$2" ]; then ok "$1 is $2"; else bad "$1 is '$got', want '$2'"; fi
}
host_fingerprint()
{
	sha256sum /etc/passwd /etc/group /etc/shadow 2>/dev/null
	ls -la /etc/drover /var/lib/drover /lib/systemd/system/droverd.service \
		/lib/systemd/system/drover-agent.service 2>&1 || true
	ls /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants 2>&1 || true
	ls /etc/systemd/system/multi-user.target.wants 2>&1 || true
	dpkg-query -W drover-agent drover-coordinator 2>&1 || true
}
host_before=$(host_fingerprint)

# --- build ------------------------------------------------------------------
t0=$(date +%s)
cpack --config "$build/CPackConfig.cmake" -G DEB -B "$tmp/v1" >"$tmp/cpack1.log" 2>&1 ||
	{ cat "$tmp/cpack1.log" >&2; bad "cpack"; exit 1; }
agent_deb=$(echo "$tmp"/v1/drover-agent_*_*.deb)
coord_deb=$(echo "$tmp"/v1/drover-coordinator_*_*.deb)
check "built drover-agent and drover-coordinator" test -f "$agent_deb" -a -f "$coord_deb"
echo "built in $(($(date +%s) - t0)) s: $(basename "$agent_deb") $(basename "$coord_deb")"
# a later revision of the same packages, for the upgrade: the same trees
# with the version raised (quicker than a second cpack run)
mkdir -p "$tmp/v2"
for deb in "$agent_deb" "$coord_deb"; do
	dpkg-deb -R "$deb" "$tmp/v2/tree"
	sed -i 's/^Version: \(.*\)-1$/Version: \1-2/' "$tmp/v2/tree/DEBIAN/control"
	dpkg-deb -b --root-owner-group "$tmp/v2/tree" "$tmp/v2/" >/dev/null
	rm -rf "$tmp/v2/tree"
done

# lintian runs in the background while the rest goes on; its verdict is read
# at the end
t_lint=$(date +%s)
lintian --fail-on error --tag-display-limit 0 "$agent_deb" "$coord_deb" >"$tmp/lintian.log" 2>&1 &
lintian_pid=$!

# --- package metadata ---------------------------------------------------------
for deb in "$agent_deb" "$coord_deb"; do
	pkg=$(dpkg-deb -f "$deb" Package)
	dpkg-deb -c "$deb" | awk '{ print $1, $2, $6 }' >"$tmp/$pkg.list"
	depends=$(dpkg-deb -f "$deb" Depends)
	check "$pkg Depends has shared-library dependencies ($depends)" \
		grep -Eq '(^|, )libc6 \(>= [0-9.]+\)' <<<"$depends"
	dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$tmp" --one-top-level="$pkg.ctrl"
	for s in postinst prerm postrm; do
		check "$pkg has an executable $s" test -x "$tmp/$pkg.ctrl/$s"
	done
	# every regular file under /etc is a conffile, and every conffile exists
	awk '$1 ~ /^-/ && $3 ~ /^\.\/etc\// { sub(/^\./, "", $3); print $3 }' "$tmp/$pkg.list" |
		sort >"$tmp/$pkg.etc"
	sort "$tmp/$pkg.ctrl/conffiles" >"$tmp/$pkg.conffiles"
	check "$pkg conffiles = its files in /etc ($(tr '\n' ' ' <"$tmp/$pkg.conffiles"))" \
		cmp -s "$tmp/$pkg.etc" "$tmp/$pkg.conffiles"
	check "$pkg: every file owned by root" \
		test -z "$(awk '$2 != "root/root"' "$tmp/$pkg.list")"
done
check "coordinator Depends on adduser" grep -q adduser <<<"$(dpkg-deb -f "$coord_deb" Depends)"
for f in "-rwxr-xr-x ./usr/sbin/drover-agent" "-rw-r--r-- ./lib/systemd/system/drover-agent.service" \
	"-rw-r--r-- ./usr/lib/tmpfiles.d/drover-agent.conf" "-rw-r--r-- ./etc/default/drover-agent" \
	"-rw-r--r-- ./usr/lib/sysusers.d/drover-agent.conf" \
	"-rw-r--r-- ./usr/share/man/man8/drover-agent.8.gz" \
	"-rw-r--r-- ./usr/share/doc/drover-agent/copyright"; do
	check "drover-agent ships $f" grep -qxF -- "${f%% *} root/root ${f#* }" "$tmp/drover-agent.list"
done
for f in "-rwxr-xr-x ./usr/sbin/droverd" "-rwxr-xr-x ./usr/bin/drover" \
	"-rw-r--r-- ./lib/systemd/system/droverd.service" \
	"-rw-r--r-- ./usr/lib/sysusers.d/drover-coordinator.conf" \
	"-rw-r--r-- ./usr/lib/tmpfiles.d/drover-coordinator.conf" "-rw-r--r-- ./etc/default/droverd" \
	"-rw-r--r-- ./usr/share/man/man8/droverd.8.gz" "-rw-r--r-- ./usr/share/man/man1/drover.1.gz"; do
	check "drover-coordinator ships $f" grep -qxF -- "${f%% *} root/root ${f#* }" \
		"$tmp/drover-coordinator.list"
done
check "the agent package does not ship droverd" \
	test -z "$(grep -E 'droverd|/usr/bin/drover$' "$tmp/drover-agent.list")"
check "unit ExecStart points at /usr/sbin" \
	grep -q '^ExecStart=/usr/sbin/drover-agent --config /etc/drover/agent/agent.yaml$' \
	<(dpkg-deb --fsys-tarfile "$agent_deb" | tar -xO ./lib/systemd/system/drover-agent.service)

# --- install into a clean root -------------------------------------------------
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/log" "$R/etc"
touch "$R/var/lib/dpkg/status" "$R/var/lib/dpkg/available"
# what base-passwd gives every Debian system
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\nadm:x:4:\n' >"$R/etc/group"
# The root has no libc6 or adduser packages: dependencies are not the point
# here, what the packages and their scripts do is.
dpkg_r()
{
	dpkg --root="$R" --log="$R/var/log/dpkg.log" --force-script-chrootless \
		--force-depends --force-confold "$@"
}

# Does this build's droverd implement `init` yet? Then the postinst must
# have used it; if not, it must have said so and left droverd unstarted.
mkdir -p "$tmp/probe/coordinator" "$tmp/probe/agent"
droverd_init=no
if "$build/coordinator/droverd" init --dir "$tmp/probe/coordinator" >/dev/null 2>&1; then
	droverd_init=yes
else
	echo "NOTE: this build's 'droverd init' fails: checking the postinst's fallback only" >&2
fi

dpkg_r -i "$agent_deb" "$coord_deb" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log" >&2; bad "dpkg -i into $R"; exit 1; }
cat "$tmp/install.log"
check "both packages installed" test "$(dpkg-query --admindir="$R/var/lib/dpkg" -W \
	-f '${Status}\n' drover-agent drover-coordinator | grep -c 'install ok installed')" = 2
check "the unconfigured agent is not started" grep -q 'drover-agent: not configured yet, so not started' "$tmp/install.log"
check "user drover created in the root" grep -q '^drover:x:[0-9]*:[0-9]*:drover coordinator:/var/lib/drover/coordinator:' "$R/etc/passwd"
check "group drover created in the root" grep -q '^drover:x:' "$R/etc/group"
check "service user drover-svc created in the root" \
	grep -q '^drover-svc:x:[0-9]*:[0-9]*:drover services:/nonexistent:/usr/sbin/nologin$' "$R/etc/passwd"
check "group drover-svc created in the root" grep -q '^drover-svc:x:' "$R/etc/group"
expect_stat /etc/drover "755 root:root"
expect_stat /var/lib/drover "755 root:root"
expect_stat /etc/drover/agent "700 root:root"
expect_stat /var/lib/drover/agent "711 root:root"
expect_stat /var/lib/drover/agent/state "700 root:root"
expect_stat /var/lib/drover/agent/cache "700 root:root"
expect_stat /var/lib/drover/agent/releases "711 root:root"
expect_stat /var/log/drover-agent "750 root:root"
for l in state:../../../var/lib/drover/agent/state cache:../../../var/lib/drover/agent/cache \
	releases:../../../var/lib/drover/agent/releases logs:../../../var/log/drover-agent; do
	check "/etc/drover/agent/${l%%:*} links to ${l#*:}" \
		test "$(readlink "$R/etc/drover/agent/${l%%:*}")" = "${l#*:}"
done
expect_stat /etc/drover/coordinator "750 drover:drover"
expect_stat /var/lib/drover/coordinator "750 drover:drover"
expect_stat /lib/systemd/system/drover-agent.service "644 root:root"
expect_stat /lib/systemd/system/droverd.service "644 root:root"
expect_stat /usr/sbin/drover-agent "755 root:root"
for u in drover-agent droverd; do
	check "$u.service enabled in the root" \
		test -L "$R/etc/systemd/system/multi-user.target.wants/$u.service"
done
check "installed drover-agent runs" "$R/usr/sbin/drover-agent" --version

# The agent's postinst without systemd-tmpfiles (hosts without systemd) must
# make the same directories and links: install it into a second root with
# a PATH that lacks systemd-tmpfiles.
agent_layout()
{
	(cd "$1" && find etc/drover/agent var/lib/drover/agent var/log/drover-agent \
		-printf '%p %y %m %U:%G %l\n' | sort)
}
R2=$tmp/root-notmpfiles
mkdir -p "$R2/var/lib/dpkg/info" "$R2/var/lib/dpkg/updates" "$R2/var/log" "$R2/etc" "$tmp/path"
touch "$R2/var/lib/dpkg/status" "$R2/var/lib/dpkg/available"
for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
	for f in "$d"/*; do
		n=${f##*/}
		[ "$n" = systemd-tmpfiles ] || [ -e "$tmp/path/$n" ] || ln -s "$f" "$tmp/path/$n"
	done
done
PATH=$tmp/path dpkg --root="$R2" --log="$R2/var/log/dpkg.log" --force-script-chrootless \
	--force-depends -i "$agent_deb" >"$tmp/install-notmpfiles.log" 2>&1 ||
	{ cat "$tmp/install-notmpfiles.log" >&2; bad "dpkg -i drover-agent without systemd-tmpfiles"; }
check "without systemd-tmpfiles the agent's postinst makes the same layout" \
	diff <(agent_layout "$R") <(agent_layout "$R2")
rm -rf "$R2"

C=/etc/drover/coordinator
S=/var/lib/drover/coordinator
if [ "$droverd_init" = yes ]; then
	check "postinst ran droverd init ($C/droverd.yaml)" test -f "$R$C/droverd.yaml"
	for f in coordinator.key admin.token; do
		expect_stat "$C/$f" "600 drover:drover"
	done
	check "no file in $C is left to root" test -z "$(find "$R$C" ! -user "$(stat -c %u "$R$C")")"
	check "no file in $S is left to root" test -z "$(find "$R$S" ! -user "$(stat -c %u "$R$C")")"
	check "every private key and token in $C is 0600" \
		test -z "$(find "$R$C" \( -name '*.key' -o -name '*.token' \) ! -perm 600)"
	check "droverd.yaml: the database is in $S" grep -qx "database: \"$S/droverd.db\"" "$R$C/droverd.yaml"
	check "droverd.yaml: link statistics are in $S" \
		grep -qx "stats_file: \"$S/link-stats.json\"" "$R$C/droverd.yaml"
	check "droverd.yaml names no path of the scratch root" test -z "$(grep -F "$R" "$R$C/droverd.yaml")"
	check "the database init made was moved to $S" test -f "$R$S/droverd.db" -a ! -e "$R$C/droverd.db"
	# droverd --check on the installed config, its paths mapped into the root
	sed -e "s|\"/etc/drover/|\"$R/etc/drover/|g" -e "s|\"/var/lib/drover/|\"$R/var/lib/drover/|g" \
		"$R$C/droverd.yaml" >"$tmp/droverd-check.yaml"
	check "droverd --check accepts the installed config" \
		"$R/usr/sbin/droverd" --config "$tmp/droverd-check.yaml" --check
else
	check "postinst warned that droverd init failed" grep -q "warning: 'droverd init' failed" "$tmp/install.log"
	check "and left no droverd.yaml (droverd stays unstarted)" test ! -e "$R$C/droverd.yaml"
fi

# --- the installed daemons run as their units would, and an agent enrolls -------
# droverd as systemd would run it: user drover, /etc read-only
# (ProtectSystem=strict), only /var/lib/drover/coordinator writable,
# NOTIFY_SOCKET for Type=notify. The root's /etc and /var/lib are overlaid on
# the host's in a private mount namespace, in a network namespace of its own
# (loopback only). Then, as docs/install.md says: an enrollment token, an agent
# configured with the coordinator's key, certificate and token, started as
# root in the same network namespace, accepted and connected.
A=/etc/drover/agent
notify_start() # notify_start NAME: a notification socket; sets sock, nw_pid
{
	mkdir -p "$tmp/$1" && chmod 0755 "$tmp" "$tmp/$1"
	sock=$tmp/$1/sock
	"$notify_wait" "$sock" 60000 READY=1 STOPPING=1 >"$tmp/$1.log" 2>&1 &
	nw_pid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
}
wait_ready() # wait_ready NAME PID
{
	for _ in $(seq 200); do
		grep -q '^notify: READY=1' "$tmp/$1.log" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
stop_daemon() # stop_daemon NAME PIDFILE WAITPID NOTIFYPID: SIGTERM, exit 0, STOPPING=1
{
	local rc=0
	kill -TERM "$(cat "$2")" 2>/dev/null || true
	wait "$3" || rc=$?
	rm -f "$2"
	wait "$4" || true
	check "$1 stops cleanly on SIGTERM (exit $rc)" test "$rc" = 0
	check "$1 says STOPPING=1 on the way out" grep -q '^notify: STOPPING=1' "$tmp/$1.log"
}

start_droverd()
{
	local ids
	ids=$(awk -F: '$1 == "drover" { print $3 " " $4 }' "$R/etc/passwd")
	drover_uid=${ids% *} drover_gid=${ids#* }
	notify_start droverd
	droverd_nw=$nw_pid
	cp -a "$R$C" "$tmp/etc-before"
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare --mount --net --fork sh -c '
		set -e
		mount --make-rprivate /
		mount -t overlay drv-etc -o "lowerdir=$1/etc:/etc" /etc
		mount -t overlay drv-varlib -o "lowerdir=$1/var/lib:/var/lib" /var/lib
		mount --bind "$1/var/lib/drover/coordinator" /var/lib/drover/coordinator
		ip link set lo up
		echo $$ >"$2/droverd.pid"
		exec setpriv --reuid="$3" --regid="$4" --clear-groups --inh-caps=-all \
			env NOTIFY_SOCKET="$5" "$1/usr/sbin/droverd" \
			--config /etc/drover/coordinator/droverd.yaml' \
		sh "$R" "$tmp" "$drover_uid" "$drover_gid" "$sock" >"$tmp/droverd-out.log" 2>&1 &
	daemon_pid=$!
	check "droverd (user drover, read-only /etc) reports READY=1 by sd_notify" \
		wait_ready droverd "$daemon_pid"
	dpid=$(cat "$tmp/droverd.pid")
	check "droverd opened its database in $S (WAL files there)" \
		test -e "$R$S/droverd.db-wal" -o -e "$R$S/droverd.db-shm"
	check "droverd serves GET /healthz (inside its network namespace)" \
		nsenter --net="/proc/$dpid/ns/net" curl -fsS --max-time 5 -o /dev/null \
		http://127.0.0.1:7480/healthz
}

# As the operator would: an enrollment token, made as drover next to the
# running droverd, then the agent's config from the coordinator's files.
enroll_agent()
{
	local token
	token=$(nsenter -t "$dpid" --mount --net setpriv --reuid="$drover_uid" --regid="$drover_gid" \
		--clear-groups "$R/usr/sbin/droverd" enroll-token create pkg-test \
		--config /etc/drover/coordinator/droverd.yaml --ttl 1h 2>"$tmp/enroll.log" | tail -1)
	check "droverd enroll-token create printed a token" test -n "$token"
	check "droverd token list --config finds the database in $S (admin token)" grep -q '^admin ' \
		<(nsenter -t "$dpid" --mount setpriv --reuid="$drover_uid" --regid="$drover_gid" \
			--clear-groups "$R/usr/sbin/droverd" token list \
			--config /etc/drover/coordinator/droverd.yaml 2>&1)
	(umask 077 && echo "$token" >"$R$A/enroll.token")
	"$R/usr/sbin/drover-agent" init --dir "$R$A" --coordinator tls+tcp://127.0.0.1:7700 \
		--coordinator-key "$R$C/coordinator.pub" --tls-ca "$R$C/tls.crt" \
		--enroll-token-file "$R$A/enroll.token" --id pkg-test-1 --label tier=core \
		>"$tmp/agent-init.log" 2>&1
}

# The agent as its unit runs it: root, Type=notify. Its config names paths
# inside the root (init ran on them), so its first start writes there: its
# key (0600), its state through the links into /var.
start_agent()
{
	notify_start drover-agent
	agent_nw=$nw_pid
	# shellcheck disable=SC2016 # expanded by the inner shell
	NOTIFY_SOCKET=$sock nsenter --net="/proc/$dpid/ns/net" sh -c 'echo $$ >"$1"; exec "$2" --config "$3"' \
		sh "$tmp/agent.pid" "$R/usr/sbin/drover-agent" "$R$A/agent.yaml" >"$tmp/agent-out.log" 2>&1 &
	agent_pid=$!
	check "drover-agent reports READY=1 by sd_notify" wait_ready drover-agent "$agent_pid"
}

agent_enrolled()
{
	nsenter --net="/proc/$dpid/ns/net" env DROVER_TOKEN_FILE="$R$C/admin.token" \
		"$R/usr/bin/drover" agents --json 2>"$tmp/drover-cli.log" >"$tmp/agents.json" &&
		jq -e '(if type == "array" then . else .agents end)[] | select(.id == "pkg-test-1" and .status == "accepted" and .connected)' \
			"$tmp/agents.json" >/dev/null
}

if [ "$droverd_init" = yes ] && [ -x "$notify_wait" ]; then
	start_droverd
	if enroll_agent; then
		check "drover-agent init wrote $A/agent.yaml" test -f "$R$A/agent.yaml"
		check "agent.yaml is not readable by others" test -z "$(find "$R$A/agent.yaml" -perm /o+rwx)"
		check "drover-agent --check accepts it" "$R/usr/sbin/drover-agent" --config "$R$A/agent.yaml" --check
		start_agent
		enrolled=no
		for _ in $(seq 100); do
			agent_enrolled && enrolled=yes && break
			sleep 0.2
		done
		check "drover agents: pkg-test-1 accepted by its token and connected over tls+tcp" \
			test "$enrolled" = yes
		stop_daemon drover-agent "$tmp/agent.pid" "$agent_pid" "$agent_nw"
		check "drover-agent made its private key, 0600" \
			test -n "$(find "$R$A" -name '*.key' -perm 600)" -a -z "$(find "$R$A" -name '*.key' ! -perm 600)"
		check "its state went through the links into /var (no directory made in $A)" \
			test -z "$(find "$R$A" -mindepth 1 -type d)"
	else
		bad "drover-agent init with the installed coordinator's key, certificate and token"
		cat "$tmp/agent-init.log" >&2
	fi
	stop_daemon droverd "$tmp/droverd.pid" "$daemon_pid" "$droverd_nw"
	daemon_pid=""
	check "droverd wrote nothing in $C" diff -r "$tmp/etc-before" "$R$C"
	if [ "$fails" != 0 ]; then
		for f in droverd-out.log droverd.log agent-out.log drover-agent.log enroll.log drover-cli.log agents.json; do
			[ ! -f "$tmp/$f" ] || { echo "--- $f:"; cat "$tmp/$f"; }
		done >&2
	fi
else
	echo "NOTE: this build's daemons do not implement init: they were not run" >&2
	echo "id: pkg-test-1" >"$R$A/agent.yaml"
	chmod 0600 "$R$A/agent.yaml"
fi

# --- upgrade: keys, state and config stay ------------------------------------
echo "sentinel state" >"$R/var/lib/drover/agent/state.db"
[ -f "$R/var/lib/drover/coordinator/droverd.db" ] ||
	echo "sentinel state" >"$R/var/lib/drover/coordinator/droverd.db"
chown --reference="$R/var/lib/drover/coordinator" "$R/var/lib/drover/coordinator/droverd.db"
echo "HTTPS_PROXY=http://127.0.0.1:3128" >>"$R/etc/default/drover-agent"
keep=("$R$A/agent.yaml" "$R/var/lib/drover/agent/state.db" "$R/var/lib/drover/coordinator/droverd.db"
	"$R/etc/default/drover-agent")
[ "$droverd_init" = yes ] && keep+=("$R$C/droverd.yaml" "$R$C/coordinator.key" "$R$C/admin.token")
for k in "$R$A"/*.key; do [ ! -f "$k" ] || keep+=("$k"); done
sha256sum "${keep[@]}" >"$tmp/before-upgrade.sum"
dpkg_r -i "$tmp"/v2/drover-agent_*.deb "$tmp"/v2/drover-coordinator_*.deb >"$tmp/upgrade.log" 2>&1 ||
	{ cat "$tmp/upgrade.log" >&2; bad "dpkg -i (upgrade to revision 2)"; exit 1; }
cat "$tmp/upgrade.log"
check "upgraded to revision 2" test "$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f '${Version}' drover-agent)" \
	= "$(dpkg-deb -f "$tmp"/v2/drover-agent_*.deb Version)"
check "upgrade kept keys, state, config and the edited conffile" sha256sum --quiet -c "$tmp/before-upgrade.sum"
check "the configured agent is not called unconfigured on upgrade" \
	test -z "$(grep 'not configured yet' "$tmp/upgrade.log")"
expect_stat /etc/drover/coordinator "750 drover:drover"
expect_stat /var/lib/drover/agent/state "700 root:root"

# --- purge, one package at a time --------------------------------------------
dpkg_r --purge drover-agent >"$tmp/purge1.log" 2>&1 || { cat "$tmp/purge1.log" >&2; bad "purge drover-agent"; }
for p in "$A" /var/lib/drover/agent /var/log/drover-agent /etc/default/drover-agent /usr/sbin/drover-agent \
	/lib/systemd/system/drover-agent.service /etc/systemd/system/multi-user.target.wants/drover-agent.service; do
	check "purging drover-agent removed $p" test ! -e "$R$p" -a ! -L "$R$p"
done
check "purging drover-agent kept the coordinator's state" test -f "$R/var/lib/drover/coordinator/droverd.db"
check "purging drover-agent kept the coordinator's config dir" test -d "$R$C"
dpkg_r --purge drover-coordinator >"$tmp/purge2.log" 2>&1 || { cat "$tmp/purge2.log" >&2; bad "purge drover-coordinator"; }
for p in /etc/drover /var/lib/drover /etc/default/droverd /usr/sbin/droverd /usr/bin/drover \
	/etc/systemd/system/multi-user.target.wants/droverd.service; do
	check "purging drover-coordinator removed $p" test ! -e "$R$p" -a ! -L "$R$p"
done
check "the drover user stays after purge (Debian practice)" grep -q '^drover:' "$R/etc/passwd"

# --- lintian: no errors (warnings are printed, allowed) -----------------------
if wait "$lintian_pid"; then
	ok "lintian: no errors ($(($(date +%s) - t_lint)) s, in the background)"
else
	bad "lintian reports errors"
fi
grep -E '^[EW]:' "$tmp/lintian.log" || true

# --- the host was not touched ----------------------------------------------------
if [ "$(host_fingerprint)" = "$host_before" ]; then
	ok "host users, /etc/drover, /var/lib/drover, units and dpkg database untouched"
else
	bad "the host changed:"
	diff <(echo "$host_before") <(host_fingerprint) >&2 || true
fi

echo "$fails failed"
[ "$fails" = 0 ]
