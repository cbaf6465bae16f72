#!/bin/sh
# run.sh BUILD_DIR SECONDS: make seed corpora, then run every fuzz target for
# SECONDS. Fails if a target crashes; the crash input is left in BUILD_DIR.
set -eu
build=$1
secs=$2
fuzz="$build/tests/fuzz"
work="$build/fuzz-work"
mkdir -p "$work/corpus/envelope"
"$fuzz/fuzz_seeds" "$work/corpus/envelope"
for target in "$fuzz"/fuzz_*; do
	name=$(basename "$target")
	[ "$name" = fuzz_seeds ] && continue
	corpus="$work/corpus/${name#fuzz_}"
	mkdir -p "$corpus"
	[ -d "tests/fuzz/corpus/${name#fuzz_}" ] && cp -n tests/fuzz/corpus/"${name#fuzz_}"/* "$corpus"/ 2>/dev/null || true
	echo "fuzz: $name for ${secs}s"
	"$target" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$work/$name-" -print_final_stats=1 "$corpus" \
		>"$work/$name.log" 2>&1 || { tail -50 "$work/$name.log"; echo "fuzz: $name FAILED"; exit 1; }
	grep -E "stat::number_of_executed_units|Done" "$work/$name.log" | tail -2
	echo "fuzz: $name passed"
done
