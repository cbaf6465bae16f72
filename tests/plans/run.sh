#!/bin/sh
# run.sh PLANS_DIR EXAMPLES_DIR CMD...: golden plan tests (OpenBSD regress
# style). CMD is the checker, e.g. `drover plan check`.
#
# For every NN-name.yaml (or .json) in PLANS_DIR, `CMD --json FILE` (run in
# PLANS_DIR, so messages name the file as given) must print exactly
# NN-name.ok: the normalized plan (exit 0) or the error lines (exit 2).
# A valid plan's normalized JSON must parse again to the same text, and
# every plan in EXAMPLES_DIR must be valid. REGEN=1 rewrites the .ok files
# (review the diff before committing).
set -u
dir=$1
examples=$2
shift 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/plans.XXXXXX")
trap 'budget_end; rm -rf "$tmp"' EXIT
# shellcheck source=../lib/budget.sh
. "$(dirname "$0")/../lib/budget.sh"
budget_start
fails=0
count=0

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

cd "$dir" || exit 1
for plan in [0-9][0-9]-*.yaml [0-9][0-9]-*.json; do
	[ -e "$plan" ] || continue
	count=$((count + 1))
	base=${plan%.*}
	"$@" --json "$plan" >"$tmp/out" 2>&1
	rc=$?
	if [ "${REGEN:-0}" = 1 ]; then
		cp "$tmp/out" "$base.ok"
	fi
	if ! diff -u "$base.ok" "$tmp/out"; then
		fail "$plan: output differs from $base.ok"
		continue
	fi
	if head -c1 "$base.ok" | grep -q '{'; then
		[ "$rc" -eq 0 ] || fail "$plan: valid plan but exit $rc"
		cp "$tmp/out" "$tmp/again.json"
		"$@" --json "$tmp/again.json" >"$tmp/again.out" 2>&1 ||
			fail "$plan: normalized plan does not parse again"
		cmp -s "$tmp/out" "$tmp/again.out" ||
			fail "$plan: normalized plan is not a fixed point"
	else
		[ "$rc" -eq 2 ] || fail "$plan: invalid plan but exit $rc (want 2)"
	fi
done
for plan in "$examples"/*.yaml; do
	count=$((count + 1))
	"$@" "$plan" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "example $plan is invalid"; }
done
echo "plans: $count checked, $fails failed"
[ "$count" -gt 0 ] && [ "$fails" -eq 0 ]
