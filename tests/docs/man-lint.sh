#!/usr/bin/env bash
# man-lint.sh SRC_DIR DROVER DROVERD AGENT: the man pages in docs/man/ are
# clean roff (groff -ww and man --warnings print nothing; lexgrog finds the
# NAME line) and complete: every option of every --help text, every drover
# command, every DROVER_* variable and every key of the configurations that
# `droverd init` and `drover-agent init` write appears in its page.
set -euo pipefail
src=$1 drover=$2 droverd=$3 agent=$4
man_dir=$src/docs/man

for tool in groff man lexgrog; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "SKIP: $tool is missing (Debian groff-base, man-db; make deps): man pages NOT checked" >&2
		exit 77
	fi
done
tmp=$(mktemp -d /tmp/drv-man-XXXXXX)
trap 'budget_end; rm -rf "$tmp"' EXIT
# shellcheck source=../lib/budget.sh
source "$(dirname "$0")/../lib/budget.sh"
budget_start
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

# ---- clean roff
for page in "$man_dir"/drover.1 "$man_dir"/droverd.8 "$man_dir"/drover-agent.8; do
	name=$(basename "$page")
	out=$(groff -man -ww -z -t "$page" 2>&1) || bad "$name: groff failed"
	[ -z "$out" ] || bad "$name: groff -ww warns: $out"
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null) ||
		bad "$name: man failed"
	[ -z "$out" ] || bad "$name: man --warnings warns: $out"
	lexgrog "$page" >/dev/null 2>&1 || bad "$name: lexgrog finds no NAME line (whatis would miss it)"
	for section in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" FILES "SEE ALSO"; do
		grep -q "^\.SH \"\?$section\"\?\$" "$page" || bad "$name: no $section section"
	done
	echo "ok: $name is clean roff"
done

# ---- complete: a word as it is written in roff (- is \-)
in_page() {
	local page=$1 word=$2
	grep -qF -- "${word//-/\\-}" "$page"
}
options_of() { # the --long options a help text names
	grep -oE -- '--[a-z][a-z-]*[a-z]' | sort -u
}
check_options() {
	local page=$1 what=$2 opt
	while read -r opt; do
		in_page "$page" "$opt" || bad "$(basename "$page") does not document $opt ($what)"
	done
}

"$drover" --help >"$tmp/drover.help"
options_of <"$tmp/drover.help" | check_options "$man_dir/drover.1" "drover --help"
cmds=$(awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ && n++ {exit}' "$tmp/drover.help")
[ -n "$cmds" ] || bad "no commands found in drover --help"
for c in $cmds; do
	in_page "$man_dir/drover.1" "$c" || bad "drover.1 does not document the command $c"
	"$drover" "$c" --help | options_of | check_options "$man_dir/drover.1" "drover $c --help"
done
for v in $(grep -oE 'DROVER_[A-Z_]+' "$tmp/drover.help" | sort -u); do
	in_page "$man_dir/drover.1" "$v" || bad "drover.1 does not document $v"
done

"$droverd" --help >"$tmp/droverd.help"
options_of <"$tmp/droverd.help" | check_options "$man_dir/droverd.8" "droverd --help"
"$droverd" token --help 2>&1 | options_of | check_options "$man_dir/droverd.8" "droverd token --help"
for c in $(awk '/^  [a-z]/ {print $1}' "$tmp/droverd.help"); do
	in_page "$man_dir/droverd.8" "$c" || bad "droverd.8 does not document $c"
done
"$agent" --help | options_of | check_options "$man_dir/drover-agent.8" "drover-agent --help"

# Configuration keys, dotted (log.level), from the files init writes; keys
# commented out because they have no default ("# file:") count too.
config_keys() {
	awk '
	{
		line = $0
		indent = match(line, /[^ ]/) - 1
		rest = substr(line, indent + 1)
		if (rest ~ /^# [a-z_]+:$/) rest = substr(rest, 3)
		if (rest !~ /^[a-z_]+:/) next
		name = substr(rest, 1, index(rest, ":") - 1)
		depth = indent / 2
		path[depth] = depth ? path[depth - 1] "." name : name
		if (depth) has_child[path[depth - 1]] = 1
		keys[path[depth]] = 1
	}
	END { for (k in keys) if (!(k in has_child)) print k }' "$1" | sort
}
"$droverd" init --dir "$tmp/c" >/dev/null 2>&1 || bad "droverd init failed"
"$agent" init --dir "$tmp/a" --coordinator tcp://127.0.0.1:7700 \
	--coordinator-key "$tmp/c/coordinator.pub" --id man-lint >/dev/null 2>&1 || bad "drover-agent init failed"
n=0
for k in $(config_keys "$tmp/c/droverd.yaml"); do
	n=$((n + 1))
	in_page "$man_dir/droverd.8" "$k" || bad "droverd.8 does not document the config key $k"
done
[ $n -ge 10 ] || bad "only $n keys found in droverd.yaml"
n=0
for k in $(config_keys "$tmp/a/agent.yaml"); do
	n=$((n + 1))
	in_page "$man_dir/drover-agent.8" "$k" || bad "drover-agent.8 does not document the config key $k"
done
[ $n -ge 10 ] || bad "only $n keys found in agent.yaml"

[ $fail -eq 0 ] || exit 1
echo "ok: every command, option, variable and config key is in its page"
