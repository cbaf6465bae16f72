#!/usr/bin/env bash
# completion.sh SRC_DIR BUILD_DIR DROVER: the shell completion scripts of
# drover. bash: the script parses, every verb of `drover --help` is offered,
# flags per verb, deployment, agent and service names from the coordinator
# (a drover stand-in prints what `drover history --json` and `drover agents
# --json` print); zsh: the script parses (when zsh is installed); and the
# coordinator package's install puts both where bash-completion and zsh look.
set -euo pipefail
src=$1 build=$2 drover=$3
bash_script=$src/packaging/completion/drover.bash
zsh_script=$src/packaging/completion/_drover
fail() { echo "FAIL: $*" >&2; exit 1; }

bash -n "$bash_script" || fail "drover.bash does not parse"
# shellcheck source=/dev/null
source "$bash_script"
# The coordinator's answers, as drover prints them with --json.
drover() {
	case "$1 $2" in
	"history --json") printf '[\n  {\n    "id": "dep-7-abc123",\n    "state": "succeeded"\n  },\n  {\n    "id": "dep-6-def456"\n  }\n]\n' ;;
	"agents --json") printf '[\n  {\n    "id": "core-1",\n    "releases": [\n      {\n        "service": "api-gateway"\n      }\n    ]\n  },\n  {\n    "id": "ui-2",\n    "releases": []\n  }\n]\n' ;;
	esac
}
complete_line() { # WORDS...: COMPREPLY for the last word
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	_drover
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}
expect() { # WANT WORDS...
	local want=$1 got
	shift
	got=$(complete_line "$@")
	[[ $got == "$want" ]] || fail "'$*': got '$got', want '$want'"
}
verbs=$("$drover" --help 2>&1 | awk '/^ +[a-z][a-z-]+ /{print $1}' | sort -u)
offered=$(complete_line drover "")
for v in $verbs; do
	[[ " $offered" == *" $v "* ]] || fail "verb $v (from drover --help) is not offered: $offered"
done
expect "deploy " drover dep
expect "--dry-run " drover deploy --dr
expect "dep-6-def456 dep-7-abc123 " drover status ""
expect "dep-7-abc123 " drover rollback dep-7
expect "core-1 ui-2 " drover logs --host ""
expect "api-gateway " drover converge ""
expect "--all " drover converge --a
expect "core-1 " drover agents accept co
expect "--follow " drover logs --fo
expect "drift " drover --coordinator http://x dri
echo "ok - bash completion: verbs, flags, deployment/agent/service names"

if command -v zsh >/dev/null; then
	zsh -n "$zsh_script" || fail "_drover does not parse"
	echo "ok - zsh completion parses"
else
	echo "skip - zsh is not installed: _drover only checked to exist"
	[[ -s $zsh_script ]] || fail "_drover is empty"
fi

tmp=$(mktemp -d /tmp/drv-completion-XXXXXX)
trap 'budget_end; rm -rf "$tmp"' EXIT
# shellcheck source=../lib/budget.sh
source "$(dirname "$0")/../lib/budget.sh"
budget_start
cmake --install "$build" --component coordinator --prefix "$tmp" >/dev/null 2>&1 ||
	fail "cmake --install of the coordinator component failed"
[[ -f $tmp/share/bash-completion/completions/drover ]] || fail "bash completion not installed"
[[ -f $tmp/share/zsh/vendor-completions/_drover ]] || fail "zsh completion not installed"
echo "ok - the coordinator package installs both"
