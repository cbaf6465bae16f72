#!/usr/bin/env bash
# test-install-agent.sh SRC_DIR BUILD_DIR: packaging/install-agent.sh installs
# the built drover-agent and its unit into a scratch --root, writes the config
# through `drover-agent init`, enables the unit there, refuses bad flags, and
# touches nothing outside the root.
set -euo pipefail
src=$(cd "$1" && pwd) build=$(cd "$2" && pwd)
script=$src/packaging/install-agent.sh
agent=$build/agent/drover-agent

tmp=$(mktemp -d /tmp/drv-instagent-XXXXXX)
trap 'budget_end; rm -rf "$tmp"' EXIT
# shellcheck source=/dev/null # (tests/lib/budget.sh, checked on its own)
source "$(dirname "$0")/../lib/budget.sh"
budget_start
R=$tmp/root
mkdir -p "$R"
fails=0
ok() { echo "ok: $*"; }
bad()
{
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}
check()
{
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
expect_rc() # expect_rc WANT DESCRIPTION COMMAND...
{
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$tmp/out" 2>&1 || rc=$?
	if [ "$rc" = "$want" ]; then ok "$what (exit $rc)"; else
		bad "$what: exit $rc, want $want"
		cat "$tmp/out" >&2
	fi
}
host_before=$(ls -la /etc/drover /var/lib/drover /etc/systemd/system/drover-agent.service \
	/usr/local/sbin/drover-agent 2>&1 || true)

# --- flags ---------------------------------------------------------------------
expect_rc 0 "--help" "$script" --help
expect_rc 2 "no flags is a usage error" "$script" --root "$R"
check "... naming the missing flag" grep -q -- '--coordinator is required' "$tmp/out"
expect_rc 2 "a label without = is refused" "$script" --root "$R" --coordinator tcp://127.0.0.1:9 \
	--coordinator-key /dev/null --id x --label nolabel
expect_rc 2 "an unknown flag is refused" "$script" --root "$R" --frobnicate
expect_rc 2 "a flag without its value is refused" "$script" --root "$R" --id
expect_rc 1 "an unreadable key is refused" "$script" --root "$R" --binary "$agent" \
	--unit "$src/packaging/drover-agent.service.in" --coordinator tcp://127.0.0.1:9 \
	--coordinator-key "$tmp/no-such.pub" --id x
check "nothing installed after refusals" test -z "$(ls -A "$R")"

# --- a coordinator key: the real one when droverd init works -------------------
key=$tmp/coordinator/coordinator.pub cert=$tmp/coordinator/tls.crt
mkdir -p "$tmp/coordinator"
if ! "$build/coordinator/droverd" init --dir "$tmp/coordinator" >/dev/null 2>&1 || [ ! -f "$key" ]; then
	echo "NOTE: this build's 'droverd init' made no coordinator.pub: using a stand-in key file" >&2
	echo "drover-ed25519-public-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" >"$key"
fi
mkdir -p "$tmp/probe"
agent_init=no
if "$agent" init --dir "$tmp/probe" --coordinator tcp://127.0.0.1:9 --coordinator-key "$key" \
	--id probe >/dev/null 2>&1; then
	agent_init=yes
else
	echo "NOTE: this build's 'drover-agent init' fails: checking the script's failure path only" >&2
fi

# --- install -------------------------------------------------------------------
cert_opt=()
[ ! -f "$cert" ] || cert_opt=(--coordinator-cert "$cert")
run_install()
{
	"$script" --root "$R" --prefix /opt/drover --binary "$agent" \
		--unit "$src/packaging/drover-agent.service.in" --coordinator tls+tcp://127.0.0.1:9 \
		--coordinator-key "$key" "${cert_opt[@]}" --id web-1 --label tier=ui --label zone=a "$@"
}
rc=0
run_install --enroll-token tok-123 >"$tmp/install.log" 2>&1 || rc=$?
cat "$tmp/install.log"
unit=$R/etc/systemd/system/drover-agent.service
check "binary installed under the prefix, 0755" test "$(stat -c %a "$R/opt/drover/sbin/drover-agent")" = 755
check "installed binary runs" "$R/opt/drover/sbin/drover-agent" --version
check "unit installed" test -f "$unit"
check "unit runs the prefix's binary" \
	grep -qx 'ExecStart=/opt/drover/sbin/drover-agent --config /etc/drover/agent/agent.yaml' "$unit"
check "unit has no template variables left" test -z "$(grep '@[a-z]*@' "$unit")"
check "unit keeps the config condition" grep -qx 'ConditionPathExists=/etc/drover/agent/agent.yaml' "$unit"
check "config dir 0700" test "$(stat -c %a "$R/etc/drover/agent")" = 700
check "state dir 0700" test "$(stat -c %a "$R/var/lib/drover/agent/state")" = 700
check "image cache 0700" test "$(stat -c %a "$R/var/lib/drover/agent/cache")" = 700
check "releases searchable, not listable (0711)" \
	test "$(stat -c %a "$R/var/lib/drover/agent/releases")" = 711
check "service user drover-svc created" grep -q '^drover-svc:x:' "$R/etc/passwd"
for l in state:../../../var/lib/drover/agent/state cache:../../../var/lib/drover/agent/cache \
	releases:../../../var/lib/drover/agent/releases logs:../../../var/log/drover-agent; do
	check "/etc/drover/agent/${l%%:*} links to ${l#*:}" \
		test "$(readlink "$R/etc/drover/agent/${l%%:*}")" = "${l#*:}"
done
check "coordinator key copied into the config dir" cmp -s "$key" "$R/etc/drover/agent/coordinator.pub"
if [ "$agent_init" = yes ]; then
	check "install succeeded" test "$rc" = 0
	check "agent.yaml written" test -f "$R/etc/drover/agent/agent.yaml"
	check "config, keys and token are private" test -z "$(find "$R/etc/drover/agent" -type f \
		\( -name '*.yaml' -o -name '*.key' -o -name '*.token' \) -perm /g+rwx,o+rwx)"
	check "agent.yaml names no path of the scratch root" test -z "$(grep -F "$R" "$R/etc/drover/agent/agent.yaml")"
	check "the enrollment token is kept 0600" test "$(stat -c %a "$R/etc/drover/agent/enroll.token")" = 600
	sed -e "s|\"/etc/drover/|\"$R/etc/drover/|g" -e "s|\"/var/lib/drover/|\"$R/var/lib/drover/|g" \
		"$R/etc/drover/agent/agent.yaml" >"$tmp/agent-check.yaml"
	check "the written config passes drover-agent --check" \
		"$agent" --config "$tmp/agent-check.yaml" --check
	check "unit enabled in the root" test -L "$R/etc/systemd/system/multi-user.target.wants/drover-agent.service"
	check "nothing started (--root)" grep -q 'systemd is not running here: nothing started' "$tmp/install.log"
	check "no 'pending' advice with an enrollment token" test -z "$(grep 'pending until' "$tmp/install.log")"
	rc=0
	run_install >"$tmp/again.log" 2>&1 || rc=$?
	check "running it again works" test "$rc" = 0
	check "... and rewrote the config" test -f "$R/etc/drover/agent/agent.yaml" -a \
		! -e "$R/etc/drover/agent/agent.yaml.old"
	check "without a token it says the agent waits for 'drover agents accept'" \
		grep -q 'drover agents accept web-1' "$tmp/again.log"
else
	check "install fails when drover-agent init fails" test "$rc" = 1
	check "... and says so" grep -q "'drover-agent init' failed" "$tmp/install.log"
	check "... without enabling the unit" \
		test ! -e "$R/etc/systemd/system/multi-user.target.wants/drover-agent.service"
fi

host_after=$(ls -la /etc/drover /var/lib/drover /etc/systemd/system/drover-agent.service \
	/usr/local/sbin/drover-agent 2>&1 || true)
check "the host was not touched" test "$host_before" = "$host_after"
echo "$fails failed"
[ "$fails" = 0 ]
