#!/bin/sh
# deps.sh PKG...: install the Debian packages that are missing, non-interactively.
# Installs nothing when everything is present; needs root only when it must install.
set -eu
# Names that installed packages provide (npm is provided by NodeSource's
# nodejs, for example): installing the real package would conflict.
provided=$(dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null |
	sed -n 's/^install ok installed|//p' | tr ',' '\n' | sed 's/(.*//; s/ //g' | sort -u)
missing=""
for p in "$@"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" &&
		! printf '%s\n' "$provided" | grep -qx "$p"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "deps: all $# packages present"
	exit 0
fi
echo "deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "deps: not root; run as root or install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
