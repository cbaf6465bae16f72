#!/usr/bin/env bash
# setup-playwright.sh [--check] DIR: make DIR/node_modules/playwright-core
# (the pinned version below) with npm, unless it is there already (make
# deps runs it; the dashboard test only checks, with --check). Only the
# library is installed: it drives the system's Chromium (Debian package
# chromium) and downloads no browser. Exit 0 when it is ready, 1 (and why)
# when not.
set -euo pipefail
check=0
if [[ ${1:-} == --check ]]; then
	check=1
	shift
fi
dir=$1
version=1.65.1
have=$(node -p "require('$dir/node_modules/playwright-core/package.json').version" 2>/dev/null || true)
[[ $have == "$version" ]] && exit 0
if ((check)); then
	echo "playwright-core $version is not in $dir (have: ${have:-none}); run make deps" >&2
	exit 1
fi
command -v npm >/dev/null || { echo "npm is not installed (Debian package npm)" >&2; exit 1; }
mkdir -p "$dir"
# npm's cache and logs stay in DIR, so a root run leaves nothing in $HOME.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$dir" --cache "$dir/.npm-cache" \
	--no-save --no-audit --no-fund --no-package-lock --loglevel=error \
	"playwright-core@$version" >"$dir/npm.log" 2>&1 || {
	echo "npm install playwright-core@$version failed: $(tail -n 5 "$dir/npm.log")" >&2
	exit 1
}
node -e "require('$dir/node_modules/playwright-core')" || exit 1
