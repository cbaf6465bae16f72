#!/usr/bin/env bash
# test-make-install.sh BUILD_DIR: `make install` honours DESTDIR and the
# prefix: binaries under PREFIX, the units pointing at them, config and
# state paths fixed at /etc/drover and /var/lib/drover.
set -euo pipefail
build=$(cd "$1" && pwd)
tmp=$(mktemp -d /tmp/drv-install-XXXXXX)
trap 'budget_end; rm -rf "$tmp"' EXIT
# shellcheck source=/dev/null # (tests/lib/budget.sh, checked on its own)
source "$(dirname "$0")/../lib/budget.sh"
budget_start
fails=0
check()
{
	local what=$1
	shift
	if "$@"; then echo "ok: $what"; else
		echo "FAIL: $what" >&2
		fails=$((fails + 1))
	fi
}

DESTDIR=$tmp cmake --install "$build" --prefix /opt/drv >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log" >&2; echo "FAIL: cmake --install" >&2; exit 1; }
D=$tmp
for f in opt/drv/sbin/drover-agent opt/drv/sbin/droverd opt/drv/bin/drover; do
	check "$f installed, executable" test -x "$D/$f"
done
for f in opt/drv/lib/systemd/system/drover-agent.service opt/drv/lib/systemd/system/droverd.service \
	opt/drv/lib/tmpfiles.d/drover-agent.conf opt/drv/lib/tmpfiles.d/drover-coordinator.conf \
	opt/drv/lib/sysusers.d/drover-coordinator.conf etc/default/drover-agent etc/default/droverd \
	opt/drv/share/man/man8/drover-agent.8.gz opt/drv/share/man/man8/droverd.8.gz \
	opt/drv/share/man/man1/drover.1.gz; do
	check "$f installed" test -f "$D/$f"
done
check "agent unit runs /opt/drv/sbin/drover-agent" grep -qx \
	'ExecStart=/opt/drv/sbin/drover-agent --config /etc/drover/agent/agent.yaml' \
	"$D/opt/drv/lib/systemd/system/drover-agent.service"
check "droverd unit runs /opt/drv/sbin/droverd" grep -qx \
	'ExecStart=/opt/drv/sbin/droverd --config /etc/drover/coordinator/droverd.yaml' \
	"$D/opt/drv/lib/systemd/system/droverd.service"
check "directories /etc/drover and /var/lib/drover" test -d "$D/etc/drover" -a -d "$D/var/lib/drover"
check "nothing installed outside DESTDIR" \
	test -z "$(grep -E '^-- (Installing|Up-to-date): ' "$tmp/install.log" | grep -v ": $tmp/")"
echo "$fails failed"
[ "$fails" = 0 ]
