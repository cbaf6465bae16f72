#!/usr/bin/env bash
# bench_pull.sh: the agent's image pull vs curl fetching the same blobs, in
# one run, from a docker-registry on loopback.
#
#   bash tests/bench/bench_pull.sh [BUILD_DIR] [PAD_MB] [ROUNDS]
#
# The image is berry-svc with a PAD_MB MiB random padding layer (default 48:
# about 50 MB in two layers). Each round empties the caches and times
# (a) bench_pull: manifest + config + layers, sha256-verified while streaming,
#     written to the content-addressed cache (fsync + rename per blob);
# (b) one curl process fetching the same blobs over one connection to files
#     (no verification);
# (c) as (a), the way the agent pulls: in the unprivileged fetch helper
#     (drover-agent fetch, exec'd), then verified from the cache
#     (skipped when BUILD_DIR has no agent/drover-agent).
# Prints the median of each and ratio = curl_ms / drover_ms (goal >= 0.8),
# and the unpack time of the same image, measured apart.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${1:-$HERE/../../build}
PAD=${2:-48}
ROUNDS=${3:-5}
BENCH=$BUILD/tests/bench/bench_pull
[[ -x $BENCH ]] || { echo "bench_pull: build first ($BENCH missing)" >&2; exit 2; }
source "$HERE/../lib/registry.sh"
source "$HERE/../lib/mkimage.sh"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/drover-bench.XXXXXX")
trap 'registry_stop "$TMP/reg"; rm -rf "$TMP"' EXIT

for ((i = 0; i < 200; i++)); do
	PORT=$((20000 + RANDOM % 10000))
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || break
done
registry_start "$TMP/reg" "$PORT"
mkimage_berry "$TMP/oci" bench 1.0.0 --pad-mb "$PAD" >&2
DIGEST=$(mkimage_push "$TMP/oci" 1.0.0 "$PORT" berrys/bench)
REF=127.0.0.1:$PORT/berrys/bench:1.0.0
BASE=http://127.0.0.1:$PORT/v2/berrys/bench
curl -fsS -H "Accept: $MKIMAGE_ACCEPT" -o "$TMP/manifest.json" "$BASE/manifests/$DIGEST"
mapfile -t BLOBS < <(jq -r '.config.digest, .layers[].digest' "$TMP/manifest.json")
BYTES=$(jq '[.config.size, .layers[].size] | add' "$TMP/manifest.json")

curl_args=(-fsS -H "Accept: $MKIMAGE_ACCEPT" -o "$TMP/curl/manifest" "$BASE/manifests/$DIGEST")
for b in "${BLOBS[@]}"; do curl_args+=(-o "$TMP/curl/${b#sha256:}" "$BASE/blobs/$b"); done

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
drover=() curlt=() helper=()
AGENT_BIN=$BUILD/agent/drover-agent
run_drover() { drover+=("$("$BENCH" "$REF@$DIGEST" "$DIGEST" "$TMP/work" --insecure | jq .fetch_ms)"); }
run_helper() {
	[[ -x $AGENT_BIN ]] || return 0
	helper+=("$("$BENCH" "$REF@$DIGEST" "$DIGEST" "$TMP/work" --insecure --fetch-exe "$AGENT_BIN" | jq .fetch_ms)")
}
run_curl() {
	local t0
	rm -rf "$TMP/curl" && mkdir -p "$TMP/curl"
	t0=$(date +%s%N)
	curl "${curl_args[@]}"
	curlt+=($((($(date +%s%N) - t0) / 1000000)))
}
run_drover # warm-up: the registry's files into the page cache
drover=()
for ((r = 0; r < ROUNDS; r++)); do
	# Alternate who goes first, so neither always meets a warmer machine.
	if ((r % 2)); then run_curl; run_helper; run_drover; else run_drover; run_helper; run_curl; fi
done
unpack=$("$BENCH" "$REF@$DIGEST" "$DIGEST" "$TMP/work" --insecure --unpack | jq .unpack_ms)
dm=$(printf '%s\n' "${drover[@]}" | median)
cm=$(printf '%s\n' "${curlt[@]}" | median)
((dm > 0)) || dm=1
echo "image: $REF ($((BYTES / 1000000)) MB in ${#BLOBS[@]} blobs incl. config), $ROUNDS rounds"
dmin=$(printf '%s\n' "${drover[@]}" | sort -n | head -1)
cmin=$(printf '%s\n' "${curlt[@]}" | sort -n | head -1)
echo "drover pull (verified, cached): ${drover[*]} ms -> median $dm ms ($((BYTES / 1000 / dm)) MB/s), best $dmin ms"
echo "curl (same blobs, one connection): ${curlt[*]} ms -> median $cm ms, best $cmin ms"
awk -v c="$cm" -v d="$dm" -v cb="$cmin" -v db="$dmin" \
	'BEGIN { printf "ratio curl/drover: %.2f on medians, %.2f on best runs (goal >= 0.8)\n", c / d, cb / (db ? db : 1) }'
echo "unpack of the same image: $unpack ms"
if ((${#helper[@]})); then
	hm=$(printf '%s\n' "${helper[@]}" | median)
	((hm > 0)) || hm=1
	echo "drover pull in the fetch helper (as the agent does): ${helper[*]} ms -> median $hm ms"
	awk -v c="$cm" -v h="$hm" 'BEGIN { printf "ratio curl/helper: %.2f on medians (goal >= 0.8)\n", c / h }'
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n ${BENCH_OUT:-} ]]; then
	mkdir -p "$BENCH_OUT"
	jq -n --argjson d "$dm" --argjson c "$cm" --argjson h "${hm:-null}" --argjson mb "$((BYTES / 1000000))" \
		--arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
		'{image_mb: $mb, drover_ms: $d, curl_ms: $c, helper_ms: $h, ratio: ($c / $d),
		  ratio_helper: (if $h then $c / $h else null end), load: $load}' >"$BENCH_OUT/pull.json"
fi
