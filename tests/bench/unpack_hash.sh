#!/usr/bin/env bash
# unpack_hash.sh: what hashing a layer in the same pass that unpacks it costs,
# in one run: `drover-agent unpack-layer DIGEST` (hashed while unpacked, as
# the agent runs it for every layer) against `drover-agent unpack-layer`
# (no digest: the baseline, how a just-fetched layer was unpacked before).
#
#   bash tests/bench/unpack_hash.sh [BUILD_DIR] [PAD_MB] [ROUNDS]
#
# The layer: a gzip'd tar of one PAD_MB MiB random file (default 48, as
# bench_pull.sh's padding) and a few small ones. Rounds alternate which goes
# first. Prints the median of each, the difference and the ratio.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${1:-$HERE/../../build}
PAD=${2:-48}
ROUNDS=${3:-9}
AGENT=$BUILD/agent/drover-agent
[[ -x $AGENT ]] || { echo "unpack_hash: build first ($AGENT missing)" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/drover-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

mkdir -p "$TMP/src/pad" "$TMP/src/etc"
head -c $((PAD * 1024 * 1024)) /dev/urandom >"$TMP/src/pad/padding.bin"
for i in $(seq 1 50); do echo "file $i" >"$TMP/src/etc/f$i.conf"; done
tar -C "$TMP/src" -czf "$TMP/layer.tar.gz" .
DG=sha256:$(sha256sum "$TMP/layer.tar.gz" | cut -d' ' -f1)
BYTES=$(stat -c %s "$TMP/layer.tar.gz")

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# one [DIGEST]: ms of one unpack into a fresh root
one() {
	local t0 out
	rm -rf "$TMP/root" && mkdir "$TMP/root"
	t0=$(date +%s%N)
	out=$("$AGENT" unpack-layer "$@" <"$TMP/layer.tar.gz" 3<"$TMP/root")
	[[ $out == ok* ]] || { echo "unpack_hash: $out" >&2; exit 1; }
	echo $((($(date +%s%N) - t0) / 1000000))
}
one "$DG" >/dev/null # warm-up
hashed=() plain=()
for ((r = 0; r < ROUNDS; r++)); do
	if ((r % 2)); then plain+=("$(one)"); hashed+=("$(one "$DG")"); else
		hashed+=("$(one "$DG")"); plain+=("$(one)"); fi
done
hm=$(printf '%s\n' "${hashed[@]}" | median)
pm=$(printf '%s\n' "${plain[@]}" | median)
((pm > 0)) || pm=1
echo "layer: $((BYTES / 1000000)) MB gzip'd tar ($PAD MiB random file), $ROUNDS rounds"
echo "unpack-layer DIGEST (hashed in the same pass): ${hashed[*]} ms -> median $hm ms"
echo "unpack-layer (no digest, baseline): ${plain[*]} ms -> median $pm ms"
awk -v h="$hm" -v p="$pm" 'BEGIN { printf "cost of the hash: %d ms, ratio hashed/plain %.2f\n", h - p, h / p }'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
