#!/bin/sh
# lint-scripts.sh SRC_DIR: the install script, the maintainer scripts and the
# packaging tests are shellcheck-clean.
set -eu
src=$1
# shellcheck source=/dev/null # (tests/lib/budget.sh, checked on its own)
. "$(dirname "$0")/../lib/budget.sh"
budget_start
if ! command -v shellcheck >/dev/null 2>&1; then
	echo "SKIP: shellcheck not found (make deps installs it): scripts NOT checked" >&2
	exit 77
fi
cd "$src"
set -- packaging/install-agent.sh packaging/debian/*/postinst packaging/debian/*/prerm \
	packaging/debian/*/postrm tests/packaging/*.sh tests/systemd/*.sh tests/systemd/lib/*.sh tests/lib/pg.sh tests/lib/budget.sh
shellcheck "$@"
echo "ok: shellcheck clean: $*"
