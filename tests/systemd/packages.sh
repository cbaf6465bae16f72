#!/bin/sh
# packages.sh BUILD_DIR OUT_DIR: this build's two Debian packages, once for
# every test of tests/systemd (CTest fixture systemd_packages): cpack into
# OUT_DIR, replacing what an earlier run left there.
set -eu
build=$1 out=$2
# shellcheck source=/dev/null # (tests/lib/budget.sh, checked on its own)
. "$(dirname "$0")/../lib/budget.sh"
budget_start
rm -rf "$out"
mkdir -p "$out"
if ! cpack --config "$build/CPackConfig.cmake" -G DEB -B "$out" >"$out.log" 2>&1; then
	tail -n 30 "$out.log" >&2
	exit 1
fi
rm -rf "$out/_CPack_Packages"
ls "$out"/drover-agent_*.deb "$out"/drover-coordinator_*.deb
