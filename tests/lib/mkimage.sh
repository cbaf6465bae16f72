# shellcheck shell=bash
# mkimage.sh: build and push berry-svc test images (source me).
#
#   mkimage_berry_bin
#       Print the path of a statically linked berry-svc, compiled once with
#       ${CC:-cc} -static -O2 into the cache and reused while the source and
#       compiler stay the same.
#   mkimage_berry OUTDIR NAME VERSION [--unhealthy] [--pad-mb N]
#       Make (or refresh) tag VERSION in the OCI image layout OUTDIR with umoci.
#       rootfs: /bin/berry-svc, /VERSION (holding VERSION), /UNHEALTHY with
#       --unhealthy (berry-svc then starts unhealthy), and with --pad-mb N a
#       first layer /pad/padding.bin of N MiB of random data (so the image has
#       two layers; the padding file is cached per size, so versions built with
#       the same N share the padding layer). Config: entrypoint /bin/berry-svc,
#       cmd --name NAME --port 8080, workdir /. Rebuilding an identical tag is a
#       no-op. Use one OUTDIR per NAME; OUTDIR must not contain ':'.
#   mkimage_push LAYOUTDIR TAG REGISTRY_PORT|ADDR:PORT NAME
#       Push oci:LAYOUTDIR:TAG to 127.0.0.1:REGISTRY_PORT/NAME:TAG (or to
#       ADDR:PORT, e.g. a registry in a test namespace; run it there) with skopeo,
#       check the registry serves the same manifest digest, print that digest
#       (sha256:...) on stdout.
#
# Progress and errors go to stderr; functions return non-zero on failure.
# Needs: umoci, skopeo, curl, sha256sum, a C compiler with static libc
# (libc6-dev). Cache: $DROVER_TEST_CACHE, else ~/.cache/drover-test.

MKIMAGE_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MKIMAGE_SRC=${MKIMAGE_SRC:-$MKIMAGE_LIB_DIR/../fixtures/berry-svc.c}
MKIMAGE_CACHE=${DROVER_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drover-test}
MKIMAGE_ACCEPT="application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json"

# The function bodies are subshells ( ... ): set -e and traps stay local.

mkimage_berry_bin() (
	set -euo pipefail
	local cc=${CC:-cc} key out tmp
	[[ -f $MKIMAGE_SRC ]] || { echo "mkimage: no source at $MKIMAGE_SRC" >&2; exit 1; }
	key=$({ cat "$MKIMAGE_SRC"; "$cc" --version; } | sha256sum | cut -c1-16)
	out=$MKIMAGE_CACHE/berry-svc-$key
	if [[ -x $out ]]; then
		echo "$out"
		exit 0
	fi
	mkdir -p "$MKIMAGE_CACHE"
	tmp=$(mktemp "$MKIMAGE_CACHE/.berry-svc.XXXXXX")
	trap 'rm -f "$tmp"' EXIT
	if ! "$cc" -std=c11 -Wall -Wextra -Werror -static -O2 -o "$tmp" "$MKIMAGE_SRC" >&2; then
		if ! echo 'int main(void){return 0;}' | "$cc" -x c -static -o /dev/null - 2>/dev/null; then
			echo "mkimage: '$cc -static' cannot link: static libc is missing (apt-get install libc6-dev)" >&2
		fi
		echo "mkimage: building static berry-svc failed" >&2
		exit 1
	fi
	chmod 0755 "$tmp"
	mv -f "$tmp" "$out" # atomic: parallel builders never see half a file
	echo "$out"
)

# Print the path of a cached file of $1 MiB of random data.
_mkimage_padding() (
	set -euo pipefail
	local mb=$1 out tmp
	out=$MKIMAGE_CACHE/padding-${mb}mb.bin
	if [[ ! -f $out ]]; then
		mkdir -p "$MKIMAGE_CACHE"
		tmp=$(mktemp "$MKIMAGE_CACHE/.padding.XXXXXX")
		trap 'rm -f "$tmp"' EXIT
		head -c "$((mb * 1024 * 1024))" /dev/urandom >"$tmp"
		chmod 0644 "$tmp"
		touch -d @1000000000 "$tmp" # fixed mtime: identical tar entry, shared layer
		mv -f "$tmp" "$out"
	fi
	echo "$out"
)

# No "umoci ls | grep -q": under pipefail, grep's early exit SIGPIPEs umoci
# and the pipeline fails even when the tag is there.
_mkimage_has_tag() {
	local tags
	[[ -f $1/index.json ]] || return 1
	tags=$(umoci ls --layout "$1" 2>/dev/null) || return 1
	grep -qxF "$2" <<<"$tags"
}

mkimage_berry() (
	set -euo pipefail
	local usage="usage: mkimage_berry OUTDIR NAME VERSION [--unhealthy] [--pad-mb N]"
	local out=${1:?$usage} name=${2:?$usage} ver=${3:?$usage}
	local unhealthy=0 pad=0 bin params stamp bundle img
	shift 3
	while (($#)); do
		case $1 in
		--unhealthy) unhealthy=1; shift ;;
		--pad-mb) [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "$usage" >&2; exit 2; }; pad=$2; shift 2 ;;
		*) echo "$usage" >&2; exit 2 ;;
		esac
	done
	[[ $out != *:* ]] || { echo "mkimage: OUTDIR must not contain ':' ($out)" >&2; exit 2; }
	[[ $ver =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$ ]] || { echo "mkimage: VERSION '$ver' is not a valid tag" >&2; exit 2; }

	bin=$(mkimage_berry_bin)
	params="name=$name version=$ver unhealthy=$unhealthy pad=$pad bin=${bin##*/}"
	stamp=$out/.mkimage/$ver.params
	if _mkimage_has_tag "$out" "$ver" && [[ -f $stamp && $(cat "$stamp") == "$params" ]]; then
		exit 0 # same inputs: keep the image (and its digest) as it is
	fi

	img=$out:$ver
	[[ -f $out/index.json ]] || umoci init --layout "$out"
	if _mkimage_has_tag "$out" "$ver"; then umoci rm --image "$img"; fi
	rm -f "$stamp"
	umoci new --image "$img"
	bundle=$(mktemp -d "${TMPDIR:-/tmp}/mkimage-bundle.XXXXXX")
	trap 'rm -rf "$bundle"' EXIT
	umoci unpack --image "$img" "$bundle/b" >/dev/null
	if ((pad > 0)); then
		mkdir -p "$bundle/b/rootfs/pad"
		cp -p "$(_mkimage_padding "$pad")" "$bundle/b/rootfs/pad/padding.bin"
		# Fixed mtimes make this layer byte-identical across builds.
		touch -d @1000000000 "$bundle/b/rootfs/pad" "$bundle/b/rootfs"
		umoci repack --refresh-bundle --history.created_by "mkimage padding ${pad}MiB" \
			--image "$img" "$bundle/b"
	fi
	mkdir -p "$bundle/b/rootfs/bin"
	install -m 0755 "$bin" "$bundle/b/rootfs/bin/berry-svc"
	printf '%s\n' "$ver" >"$bundle/b/rootfs/VERSION"
	if ((unhealthy)); then : >"$bundle/b/rootfs/UNHEALTHY"; fi
	umoci repack --history.created_by "mkimage berry-svc $name $ver" --image "$img" "$bundle/b"
	umoci config --image "$img" --no-history \
		--config.entrypoint /bin/berry-svc \
		--config.cmd=--name --config.cmd="$name" --config.cmd=--port --config.cmd=8080 \
		--config.workingdir / --config.exposedports 8080/tcp --config.stopsignal SIGTERM \
		--config.label "org.opencontainers.image.title=$name" \
		--config.label "org.opencontainers.image.version=$ver"
	umoci gc --layout "$out"
	mkdir -p "$out/.mkimage"
	printf '%s\n' "$params" >"$stamp"
)

mkimage_push() (
	set -euo pipefail
	local usage="usage: mkimage_push LAYOUTDIR TAG REGISTRY_PORT|ADDR:PORT NAME"
	local layout=${1:?$usage} tag=${2:?$usage} reg=${3:?$usage} name=${4:?$usage}
	local tmp pushed served
	[[ $reg == *:* ]] || reg=127.0.0.1:$reg
	_mkimage_has_tag "$layout" "$tag" || { echo "mkimage: no tag $tag in $layout" >&2; exit 1; }
	tmp=$(mktemp)
	trap 'rm -f "$tmp"' EXIT
	# --insecure-policy: no dependence on the host's /etc/containers/policy.json;
	# --preserve-digests: fail rather than let skopeo rewrite the manifest.
	skopeo --insecure-policy copy -q --dest-tls-verify=false --preserve-digests \
		--digestfile "$tmp" "oci:$layout:$tag" "docker://$reg/$name:$tag" >&2
	pushed=$(cat "$tmp")
	served=$(curl -fsS --max-time 10 -I -H "Accept: $MKIMAGE_ACCEPT" \
		"http://$reg/v2/$name/manifests/$tag" |
		tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
	if [[ -z $pushed || $pushed != "$served" ]]; then
		echo "mkimage: pushed $name:$tag as '$pushed' but registry serves '$served'" >&2
		exit 1
	fi
	echo "$pushed"
)
