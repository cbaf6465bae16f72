# shellcheck shell=bash
# images.sh: the reference system of the runbook as OCI images.
#
#   E2E_SERVICES       the eight services, in tier order
#   E2E_VERSIONS       v1 v2 v3 (v3 is built --unhealthy: its /health fails)
#   tier_of SERVICE    core | supporting | ui
#   tier_services TIER the services of TIER, one per line
#   images_build [SERVICE...]   build v1 v2 v3 of each (default: all eight)
#                      into a cache shared by runs ($MKIMAGE_CACHE/e2e-images,
#                      one layout per service, under flock; unchanged images
#                      are not rebuilt, so digests are stable across runs)
#   images_push [SERVICE...]    push them to $E2E_REGISTRY as
#                      berrys/SERVICE:vN (from inside the control namespace) and
#                      record each in $E2E_RUN/images.state
#   image_digest SERVICE VERSION   sha256:... as pushed
#   image_ref SERVICE VERSION      ADDR:PORT/berrys/SERVICE@sha256:...
#   image_tag_ref SERVICE VERSION  ADDR:PORT/berrys/SERVICE:VERSION
#
# $E2E_RUN/images.state: one line per pushed image,
#   SERVICE VERSION DIGEST REPOSITORY
# e.g. "api-gateway v2 sha256:3f... 10.213.57.1:5000/berrys/api-gateway".
# The image's rootfs: /bin/berry-svc, /VERSION (v1..v3), /UNHEALTHY for v3;
# its config runs /bin/berry-svc --name SERVICE --port 8080.

E2E_SERVICES=(project-coordinator agent-orchestrator model-orchestration
	planning-system tool-integration service-integration
	api-gateway web-dashboard)
E2E_VERSIONS=(v1 v2 v3)
E2E_IMAGE_CACHE=${E2E_IMAGE_CACHE:-$MKIMAGE_CACHE/e2e-images}

tier_of() {
	case $1 in
	project-coordinator | agent-orchestrator | model-orchestration) echo core ;;
	planning-system | tool-integration | service-integration) echo supporting ;;
	api-gateway | web-dashboard) echo ui ;;
	*)
		echo "e2e: unknown service '$1'" >&2
		return 1
		;;
	esac
}

tier_services() {
	local s
	for s in "${E2E_SERVICES[@]}"; do
		[[ $(tier_of "$s") == "$1" ]] && echo "$s"
	done
	return 0
}

_images_build_one() (
	set -euo pipefail
	local svc=$1 dir=$E2E_IMAGE_CACHE/$1 v
	mkdir -p "$E2E_IMAGE_CACHE"
	exec 9>"$dir.lock"
	flock -w 300 9 || {
		echo "e2e: timed out waiting for the lock on $dir" >&2
		exit 1
	}
	for v in "${E2E_VERSIONS[@]}"; do
		if [[ $v == v3 ]]; then
			mkimage_berry "$dir" "$svc" "$v" --unhealthy
		else
			mkimage_berry "$dir" "$svc" "$v"
		fi
	done
)

images_build() {
	local s svcs=("$@")
	((${#svcs[@]})) || svcs=("${E2E_SERVICES[@]}")
	for s in "${svcs[@]}"; do
		tier_of "$s" >/dev/null || return 2
		_images_build_one "$s" || {
			echo "e2e: building images of $s failed" >&2
			return 1
		}
	done
}

images_push() {
	local s v d svcs=("$@")
	((${#svcs[@]})) || svcs=("${E2E_SERVICES[@]}")
	[[ -n $E2E_REGISTRY ]] || {
		echo "e2e: images_push: no registry (registry_up first)" >&2
		return 1
	}
	for s in "${svcs[@]}"; do
		for v in "${E2E_VERSIONS[@]}"; do
			# The layout is read under the same lock the builder holds.
			# shellcheck disable=SC2016 # expanded by the child bash
			d=$(flock -w 300 "$E2E_IMAGE_CACHE/$s.lock" ip netns exec "$(ns_of control)" \
				bash -c 'source "$0" || exit 2; "$@"' "$E2E_LIB/e2e.sh" \
				mkimage_push "$E2E_IMAGE_CACHE/$s" "$v" "$E2E_REGISTRY" "berrys/$s") || {
				echo "e2e: pushing $s:$v failed" >&2
				return 1
			}
			echo "$s $v $d $E2E_REGISTRY/berrys/$s" >>"$E2E_RUN/images.state"
		done
	done
}

image_digest() {
	local line f d=
	[[ -f $E2E_RUN/images.state ]] || {
		echo "e2e: no images pushed in this run" >&2
		return 1
	}
	while IFS= read -r line; do
		read -ra f <<<"$line"
		if [[ ${f[0]} == "$1" && ${f[1]} == "$2" ]]; then d=${f[2]}; fi
	done <"$E2E_RUN/images.state"
	[[ -n $d ]] || {
		echo "e2e: no image $1:$2 pushed" >&2
		return 1
	}
	echo "$d"
}

image_ref() {
	local d
	d=$(image_digest "$1" "$2") || return 1
	echo "$E2E_REGISTRY/berrys/$1@$d"
}

image_tag_ref() { echo "$E2E_REGISTRY/berrys/$1:$2"; }
