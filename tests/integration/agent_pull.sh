#!/usr/bin/env bash
# agent_pull.sh: the image puller against a real docker-registry on loopback:
# pull + verify + unpack (PRESTAGE), a shared layer fetched once, resume of a
# partial blob, a 404, a corrupted blob in the registry's storage rejected
# with nothing half-installed, path-escaping layers ('..', absolute, symlink
# written through) rejected, gzip/zstd/plain layers with whiteouts, an
# oci-layout: source, a stalled registry, and GC keeping current + previous.
TEST_NAME=agent_pull
source "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"
need_tools tar zstd gzip sha256sum
setup_registry

push_berry D1 1.0.0 --pad-mb 2
push_berry D2 2.0.0 --pad-mb 2
push_berry D3 3.0.0 --pad-mb 2
ok "registry on $REG with berry 1.0.0, 2.0.0, 3.0.0 (two layers each, shared padding)"

pre() { svc_json "$1" prestage berry "$2" "$3" 20001; }
cache_blobs() { find "$AGENT_DIR/cache/blobs/sha256" -type f | wc -l; }

# LD_DEBUG=files: every process says on stderr (lines prefixed by its PID)
# which libraries it loaded
LD_DEBUG=files run_step p1 "$(pre p1 1.0.0 "$D1")" --insecure-registry ||
	fail "prestage 1.0.0: $(final p1)"
R1=$AGENT_DIR/releases/berry/${D1#sha256:}
[[ -x $R1/rootfs/bin/berry-svc && $(cat "$R1/rootfs/VERSION") == 1.0.0 ]] || fail "1.0.0 rootfs incomplete"
[[ $(stat -c %s "$R1/rootfs/pad/padding.bin") == $((2 * 1024 * 1024)) ]] || fail "padding layer missing"
for b in "$AGENT_DIR"/cache/blobs/sha256/*; do
	[[ $(sha256sum "$b" | cut -d' ' -f1) == "$(basename "$b")" ]] || fail "cache blob $b does not match its name"
done
ok "prestage pulls, verifies and unpacks 1.0.0 ($(cache_blobs) blobs in the cache, each matching its digest)"

# The agent's own process loaded neither libcurl, libarchive nor libcrypto:
# the pull ran in the fetch helper, the layers in the unpack helper, and the
# agent hashed the manifest and config with libsodium (agent/lazylib.h,
# common/sha256.h). The agent is the first process in its stderr (the
# helpers inherit it).
# agent_loaded STEP: the libraries of the list the agent's process loaded
agent_loaded() {
	local first
	first=$(awk '$1 ~ /^[0-9]+:$/ { sub(/:$/, "", $1); print $1; exit }' "$TMP/$1.err")
	[[ -n $first ]] || fail "no LD_DEBUG output in $1"
	awk -v p="$first:" '$1 == p && /file=lib(curl|archive|crypto)\.so/ { print $2 }' "$TMP/$1.err" | sort -u
}
loaded=$(agent_loaded p1)
[[ -z $loaded ]] || fail "the agent process loaded $loaded"
grep -qE 'file=libarchive\.so' "$TMP/p1.err" || fail "no process loaded libarchive: did anything unpack?"
grep -qE 'file=libcrypto\.so' "$TMP/p1.err" || fail "no process loaded libcrypto: did anything hash?"
ok "libcurl, libarchive and libcrypto were loaded by the helpers only, not by the agent's process"

# The registry pull ran in the fetch helper, as its unprivileged user with
# no_new_privs; the cache's directories and the new blobs are that user's,
# the release is not.
fetch_user=drover-fetch
id -u "$fetch_user" >/dev/null 2>&1 || fetch_user=drover-svc
if [[ $(id -u) == 0 ]] && id -u "$fetch_user" >/dev/null 2>&1; then
	fuid=$(id -u "$fetch_user")
	grep -q "fetch helper done.*helper_uid=$fuid .*no_new_privs=1" "$TMP/p1.err" ||
		fail "no fetch helper as $fetch_user with no_new_privs: $(grep -i fetch "$TMP/p1.err" | tail -3)"
	[[ $(stat -c %u "$AGENT_DIR/cache/blobs/sha256") == "$fuid" ]] || fail "cache not the helper's"
	for b in "$AGENT_DIR"/cache/blobs/sha256/*; do
		[[ $(stat -c %u "$b") == "$fuid" ]] || fail "blob $b not written by the helper"
	done
	[[ $(stat -c %u "$R1") == 0 ]] || fail "release owned by $(stat -c %U "$R1")"
	ok "the pull ran in the fetch helper as $fetch_user (uid $fuid, no_new_privs); the release is root's"
fi

n_before=$(cache_blobs)
run_step p2 "$(pre p2 2.0.0 "$D2")" --insecure-registry || fail "prestage 2.0.0"
# The padding layer is shared: 2.0.0 adds manifest, config and one layer.
(($(cache_blobs) == n_before + 3)) || fail "shared layer fetched again ($n_before -> $(cache_blobs))"
ok "a layer shared by two images is fetched once"

# Every layer, cached or just fetched, is hashed by the unpack helper in the
# same pass that unpacks it (agent/unpack_helper.h): a corrupted cached
# layer is dropped with a clear error, nothing half-installed, the agent's
# process loaded no libcrypto, and the next try fetches the layer again.
pad=$(curl -fsS -H "Accept: $MKIMAGE_ACCEPT" "http://$REG/v2/berrys/berry/manifests/$D1" |
	jq -r '.layers | max_by(.size) | .digest')
blob=$AGENT_DIR/cache/blobs/sha256/${pad#sha256:}
[[ -f $blob ]] || fail "padding layer $pad not in the cache"
printf 'X' | dd of="$blob" bs=1 seek=100 conv=notrunc status=none
other() { pre "$1" 1.0.0 "$D1" | jq -c '.service.name = "berry-b"'; }
rc=0
LD_DEBUG=files run_step pc "$(other pc)" --insecure-registry || rc=$?
[[ $rc == 1 && $(field pc .message) == *"layer $pad failed verification and was dropped"* ]] ||
	fail "corrupt cached layer: $(final pc)"
[[ ! -e $blob && ! -e $AGENT_DIR/releases/berry-b/${D1#sha256:} ]] ||
	fail "corrupt cached layer or its release left on disk"
[[ -z $(find "$AGENT_DIR/releases/berry-b" -maxdepth 1 -name '.tmp-*') ]] || fail "temp release dir left"
loaded=$(agent_loaded pc)
[[ -z $loaded ]] || fail "the agent process loaded $loaded to verify cached layers"
run_step pc2 "$(other pc2)" --insecure-registry || fail "prestage after a dropped layer: $(final pc2)"
[[ $(sha256sum "$blob" | cut -d' ' -f1) == "${pad#sha256:}" ]] || fail "layer not fetched again"
rm -rf "$AGENT_DIR/releases/berry-b" # only berry's releases for the GC check below
ok "a corrupted cached layer is refused by the unpack helper and dropped ($(field pc .message | cut -c1-60)...), then fetched again"

# A compromised fetch helper (the unprivileged component; hostile_fetch.c
# runs the real one, then flips a byte of the biggest blob it has just
# downloaded and verified) cannot get a layer into a release: the agent does
# not trust the cache its helper wrote, the unpack helper finds the layer's
# bytes do not hash to its digest, and the layer is dropped, no release.
HOSTILE=$DROVER_BUILD/tests/integration/hostile_fetch
[[ -x $HOSTILE ]] || fail "hostile_fetch not built"
hdir=$TMP/agent-hostile
rc=0
AGENT_DIR=$hdir run_step ph "$(pre ph 1.0.0 "$D1")" --insecure-registry --fetch-exe "$HOSTILE" || rc=$?
grep -q "hostile_fetch: flipped byte" "$TMP/ph.err" || fail "the hostile helper did not tamper: $(tail -3 "$TMP/ph.err")"
[[ $rc == 1 && $(field ph .message) == *"layer $pad failed verification and was dropped"* ]] ||
	fail "a layer altered by the fetch helper after its download: $(final ph)"
[[ ! -e $hdir/releases/berry/${D1#sha256:} && ! -e $hdir/cache/blobs/sha256/${pad#sha256:} ]] ||
	fail "the altered layer or a release from it left on disk"
[[ -z $(find "$hdir/releases/berry" -maxdepth 1 -name '.tmp-*') ]] || fail "temp release dir left"
rm -rf "$hdir"
ok "a layer a compromised fetch helper altered after downloading it is refused ($(field ph .message | cut -c1-60)...), no release"

# Resume: leave the first half of 3.0.0's big layer as a partial download.
curl -fsS -H "Accept: $MKIMAGE_ACCEPT" "http://$REG/v2/berrys/berry/manifests/$D3" >"$TMP/m3.json"
small=$(jq -r '.layers | min_by(.size) | .digest' "$TMP/m3.json")
# (3.0.0 shares the padding with 1.0.0; take its own layer and drop it from the cache)
layer=$small
size=$(jq -r --arg d "$layer" '.layers[] | select(.digest == $d) | .size' "$TMP/m3.json")
curl -fsS -o "$TMP/whole" "http://$REG/v2/berrys/berry/blobs/$layer"
head -c $((size / 2)) "$TMP/whole" >"$AGENT_DIR/cache/partial/${layer#sha256:}"
run_step p3 "$(pre p3 3.0.0 "$D3")" --insecure-registry || fail "prestage 3.0.0 with a partial blob: $(final p3)"
grep -q "resuming a partial blob" "$TMP/p3.err" || fail "no resume logged"
[[ $(sha256sum "$AGENT_DIR/cache/blobs/sha256/${layer#sha256:}" | cut -d' ' -f1) == "${layer#sha256:}" ]] ||
	fail "resumed blob is corrupt"
[[ ! -e $AGENT_DIR/cache/partial/${layer#sha256:} ]] || fail "partial file left behind"
ok "a partial blob is resumed with a Range request and verified ($((size / 2)) of $size bytes were there)"

# 404: a digest the registry does not have.
missing=sha256:$(printf 'nothing' | sha256sum | cut -d' ' -f1)
rc=0
run_step p404 "$(pre p404 9.9.9 "$missing")" --insecure-registry || rc=$?
[[ $rc == 1 && $(field p404 .message) == *"HTTP 404"* ]] || fail "404: $(final p404)"
[[ ! -e $AGENT_DIR/releases/berry/${missing#sha256:} ]] || fail "release dir after a 404"
ok "unknown digest: clear 404 error ($(field p404 .message | cut -c1-100)...)"

# Corrupt a layer blob inside the registry's storage: the pull must refuse it.
push_berry D4 4.0.0
curl -fsS -H "Accept: $MKIMAGE_ACCEPT" "http://$REG/v2/berrys/berry/manifests/$D4" >"$TMP/m4.json"
l4=$(jq -r '.layers[-1].digest' "$TMP/m4.json")
h=${l4#sha256:}
data=$REG_DIR/storage/docker/registry/v2/blobs/sha256/${h:0:2}/$h/data
[[ -f $data ]] || fail "registry storage layout unexpected: $data"
printf 'X' | dd of="$data" bs=1 seek=100 conv=notrunc status=none
rc=0
run_step p4 "$(pre p4 4.0.0 "$D4")" --insecure-registry || rc=$?
[[ $rc == 1 && $(field p4 .message) == *"failed verification"* ]] || fail "corrupt blob: $(final p4)"
[[ ! -e $AGENT_DIR/releases/berry/${D4#sha256:} && ! -e $AGENT_DIR/cache/blobs/sha256/$h ]] ||
	fail "corrupt blob or half release left on disk"
[[ -z $(find "$AGENT_DIR/releases/berry" -maxdepth 1 -name '.tmp-*') ]] || fail "temp release dir left"
ok "a corrupted blob is rejected ($(field p4 .message | cut -c1-90)...), nothing half-installed"

# Truncate a layer in the registry's storage: retried, then a clear error.
push_berry D6 6.0.0
curl -fsS -H "Accept: $MKIMAGE_ACCEPT" "http://$REG/v2/berrys/berry/manifests/$D6" >"$TMP/m6.json"
l6=$(jq -r '.layers[-1].digest' "$TMP/m6.json")
h=${l6#sha256:}
data=$REG_DIR/storage/docker/registry/v2/blobs/sha256/${h:0:2}/$h/data
truncate -s 1000 "$data"
rc=0
run_step p6 "$(pre p6 6.0.0 "$D6")" --insecure-registry || rc=$?
[[ $rc == 1 && $(field p6 .message) == *"truncated: got 1000 of"* ]] || fail "truncated blob: $(final p6)"
(($(grep -c "blob download failed, retrying" "$TMP/p6.err") >= 3)) || fail "truncated blob not retried"
[[ ! -e $AGENT_DIR/releases/berry/${D6#sha256:} ]] || fail "release after a truncated blob"
ok "a truncated blob is retried (resuming), then fails clearly: $(field p6 .message | grep -o 'truncated: got [0-9]* of [0-9]* bytes after [0-9]* attempts')"

# Hand-made layers: plain, gzip and zstd, whiteouts, and escapes.
mkdir -p "$TMP/l/a/etc" "$TMP/l/b/etc" "$TMP/l/c"
echo base >"$TMP/l/a/etc/keep"
echo gone >"$TMP/l/a/etc/remove-me"
mkdir -p "$TMP/l/a/opq" && echo old >"$TMP/l/a/opq/old"
tar -C "$TMP/l/a" -cf "$TMP/l1.tar" etc opq
: >"$TMP/l/b/etc/.wh.remove-me"
mkdir -p "$TMP/l/b/opq" && : >"$TMP/l/b/opq/.wh..wh..opq" && echo new >"$TMP/l/b/opq/new"
echo zstd >"$TMP/l/b/etc/added"
tar -C "$TMP/l/b" -cf - etc opq | zstd -q -o "$TMP/l2.tar.zst"
echo gz >"$TMP/l/c/gzfile"
tar -C "$TMP/l/c" -czf "$TMP/l3.tar.gz" gzfile
mklayout "$TMP/lay" v1 application/vnd.oci.image.layer.v1.tar "$TMP/l1.tar" >/dev/null
# Mixed media types: rewrite the manifest by hand for three layers.
DL=$(mklayout "$TMP/mixed" v1 application/vnd.oci.image.layer.v1.tar "$TMP/l1.tar" "$TMP/l2.tar.zst" "$TMP/l3.tar.gz")
mj=$TMP/mixed/blobs/sha256/${DL#sha256:}
jq -c '.layers[1].mediaType = "application/vnd.oci.image.layer.v1.tar+zstd" | .layers[2].mediaType = "application/vnd.oci.image.layer.v1.tar+gzip"' "$mj" >"$TMP/mj"
md=$(sha256sum "$TMP/mj" | cut -d' ' -f1)
cp "$TMP/mj" "$TMP/mixed/blobs/sha256/$md"
jq -c --arg d "sha256:$md" --argjson s "$(stat -c %s "$TMP/mj")" '.manifests[0].digest = $d | .manifests[0].size = $s' \
	"$TMP/mixed/index.json" >"$TMP/ix" && mv "$TMP/ix" "$TMP/mixed/index.json"
DM=$(push_layout "$TMP/mixed" v1 berrys/mixed)
[[ $DM == "sha256:$md" ]] || fail "mixed image digest $DM != sha256:$md"
mixed() { jq -cn --arg s "$1" --arg ref "$2" --arg d "$3" '{action:"prestage", step_id:$s, service:{name:"mixed", version:"v1", image:{reference:$ref, digest:$d}}}'; }
run_step mx "$(mixed mx "$REG/berrys/mixed:v1" "$DM")" --insecure-registry || fail "mixed layers: $(final mx)"
RM=$AGENT_DIR/releases/mixed/$md/rootfs
[[ $(cat "$RM/etc/keep") == base && ! -e $RM/etc/remove-me && $(cat "$RM/etc/added") == zstd ]] ||
	fail "whiteout or zstd layer not applied"
[[ ! -e $RM/opq/old && $(cat "$RM/opq/new") == new && $(cat "$RM/gzfile") == gz ]] ||
	fail "opaque whiteout or gzip layer not applied"
ok "plain, zstd and gzip layers applied in order; .wh. and opaque whiteouts honoured"

# The same image from an oci-layout: source (air-gapped), no registry involved.
run_step ol "$(mixed ol "oci-layout:$TMP/mixed:v1" "$DM")" || fail "oci-layout source: $(final ol)"
ok "oci-layout:PATH source works"

# Escapes. Each is its own image; each must be refused, with no release left.
escape_case() { # NAME TARFILE WHAT
	local name=$1 tarf=$2 what=$3 d rc=0
	d=$(mklayout "$TMP/esc-$name" v1 application/vnd.oci.image.layer.v1.tar "$tarf")
	d=$(push_layout "$TMP/esc-$name" v1 "berrys/esc-$name")
	run_step "esc-$name" "$(jq -cn --arg s "esc-$name" --arg n "esc-$name" --arg ref "$REG/berrys/esc-$name:v1" --arg d "$d" \
		'{action:"prestage", step_id:$s, service:{name:$n, version:"v1", image:{reference:$ref, digest:$d}}}')" \
		--insecure-registry || rc=$?
	[[ $rc == 1 && $(field "esc-$name" .message) == *refused* ]] || fail "$what not refused: $(final "esc-$name")"
	[[ -z $(ls -A "$AGENT_DIR/releases/esc-$name" 2>/dev/null) ]] || fail "$what: release dir left"
	ok "$what refused: $(field "esc-$name" .message | sed 's/.*: layer entry/layer entry/' | cut -c1-110)"
}
mkdir -p "$TMP/e1/x" && echo pwned >"$TMP/e1/x/evil"
tar -C "$TMP/e1" -cf "$TMP/dotdot.tar" -P --transform 's,^x/evil,../../../tmp/drover-evil,' x/evil
escape_case dotdot "$TMP/dotdot.tar" "a '..' entry"
tar -C "$TMP/e1" -cf "$TMP/abs.tar" -P --transform "s,^x/evil,$TMP/abs-evil," x/evil
escape_case abs "$TMP/abs.tar" "an absolute entry"
mkdir -p "$TMP/e2/x" "$TMP/outside" && ln -s "$TMP/outside" "$TMP/e2/link" && echo pwned >"$TMP/e2/x/pwned"
tar -C "$TMP/e2" -cf "$TMP/symlink.tar" --no-recursion --transform 's,^x/,link/,' link x/pwned
escape_case symlink "$TMP/symlink.tar" "a file written through an absolute symlink"
ln -s ../../../../../../.. "$TMP/e2/up"
tar -C "$TMP/e2" -cf "$TMP/symrel.tar" --no-recursion --transform 's,^x/,up/tmp/,' up x/pwned
escape_case symrel "$TMP/symrel.tar" "a file written through a relative symlink leaving the root"
[[ ! -e /tmp/drover-evil && ! -e $TMP/abs-evil && ! -e $TMP/outside/pwned ]] || fail "something was written outside the root"
ok "nothing was written outside the release roots"

# A stalled registry (SIGSTOP): the pull fails with a clear error in bounded time.
push_berry D5 5.0.0
rpid=$(cat "$REG_DIR/registry.pid")
kill -STOP "$rpid"
at_exit "kill -CONT $rpid"
t0=$(date +%s)
rc=0
run_step p5 "$(pre p5 5.0.0 "$D5")" --insecure-registry --pull-stall-s 1 || rc=$?
kill -CONT "$rpid"
secs=$(($(date +%s) - t0))
[[ $rc == 1 ]] || fail "stalled registry: $(final p5)"
((secs < 90)) || fail "stalled pull took $secs s"
[[ ! -e $AGENT_DIR/releases/berry/${D5#sha256:} ]] || fail "release after a stalled pull"
ok "stalled registry: failed after $secs s with '$(field p5 .message | cut -c1-100)'"

# GC: after starting 1.0.0 then 2.0.0 (then 3.0.0), only current + previous remain.
stop_on_exit berry
for v in 1 2 3; do
	eval "d=\$D$v"
	run_step "s$v" "$(svc_json "s$v" start berry "$v.0.0" "$d" "$(pick_port)")" --insecure-registry ||
		fail "start $v.0.0: $(final "s$v")"
done
left=$(ls "$AGENT_DIR/releases/berry" | sort | tr '\n' ' ')
want=$(printf '%s\n' "${D2#sha256:}" "${D3#sha256:}" | sort | tr '\n' ' ')
[[ $left == "$want" ]] || fail "GC kept '$left', want '$want'"
[[ ! -e $AGENT_DIR/cache/blobs/sha256/${D1#sha256:} ]] || fail "GC kept 1.0.0's manifest blob"
run_step stop "$(simple_json stop stop berry)" || fail "stop"
ok "GC keeps the current and previous releases (and their blobs) only"

echo "$TEST_NAME: $PASSED passed, 0 failed"
