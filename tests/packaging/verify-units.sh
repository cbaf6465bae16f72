#!/usr/bin/env bash
# verify-units.sh SRC_DIR GEN_DIR AGENT_BIN DROVERD_BIN: every systemd unit
# in packaging/ passes `systemd-analyze verify` without a single warning
# (its ExecStart= pointing at the binaries just built, its man: pages found
# among the ones just built), and droverd's sandbox keeps its exposure score.
set -euo pipefail
src=$1 gen=$2 agent=$3 droverd=$4

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze not found (Debian package systemd): units NOT verified" >&2
	exit 77
fi
tmp=$(mktemp -d /tmp/drv-units-XXXXXX)
trap 'budget_end; rm -rf "$tmp"' EXIT
# shellcheck source=/dev/null # (tests/lib/budget.sh, checked on its own)
source "$(dirname "$0")/../lib/budget.sh"
budget_start
mkdir -p "$tmp/sbin" "$tmp/man/man1" "$tmp/man/man8"
ln -s "$agent" "$tmp/sbin/drover-agent"
ln -s "$droverd" "$tmp/sbin/droverd"
cp "$gen"/*.8.gz "$tmp/man/man8/"
cp "$gen"/*.1.gz "$tmp/man/man1/"

fail=0
units=()
for in in "$src"/packaging/*.service.in; do
	u="$tmp/$(basename "$in" .in)"
	sed "s|@sbindir@|$tmp/sbin|g" "$in" >"$u"
	if grep -n '@[a-z_]*@' "$u"; then
		echo "FAIL: $(basename "$in"): unreplaced template variable" >&2
		fail=1
	fi
	units+=("$u")
done
[ ${#units[@]} -ge 2 ] || { echo "FAIL: expected at least 2 units, found ${#units[@]}" >&2; exit 1; }

man_opt=()
if ! command -v man >/dev/null 2>&1; then
	echo "NOTE: man not installed: Documentation=man: entries not checked" >&2
	man_opt=(--man=no)
fi
for u in "${units[@]}"; do
	if out=$(MANPATH="$tmp/man" systemd-analyze verify "${man_opt[@]}" "$u" 2>&1) && [ -z "$out" ]; then
		echo "ok: systemd-analyze verify $(basename "$u")"
	else
		echo "FAIL: systemd-analyze verify $(basename "$u"):" >&2
		echo "$out" >&2
		fail=1
	fi
done

# The coordinator's hardening must not regress: systemd rates it 0 (locked
# down) to 10 (exposed); the agent is exposed by design (see its unit).
for u in droverd:2.0 drover-agent:10.0; do
	name=${u%%:*} max=${u#*:}
	score=$(systemd-analyze security --offline=true "$tmp/$name.service" 2>/dev/null |
		sed -n "s/.*exposure level for $name.service: \([0-9.]*\).*/\1/p")
	if [ -n "$score" ] && awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
		echo "ok: $name.service exposure $score (at most $max)"
	else
		echo "FAIL: $name.service exposure '${score}' above $max" >&2
		fail=1
	fi
done
exit $fail
