#!/usr/bin/env bash
# selftest_images.sh: the runbook's reference system as images (CTest
# e2e_reference_images): the eight services x v1 v2 v3 built, pushed to the
# registry in the control namespace, recorded in images.state, and checked
# from a host namespace (manifest digest, config labels, /UNHEALTHY in v3).
#
#   sudo bash tests/e2e/selftest_images.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

e2e_require_root
e2e_require_tools curl jq docker-registry skopeo umoci flock tar

net_up h1 || fail "net_up"
registry_up || fail "registry_up"
T0=$(e2e_now_ms)
images_build || fail "images_build"
T1=$(e2e_now_ms)
images_push || fail "images_push"
T2=$(e2e_now_ms)
ok "built 8 services x 3 versions in $((T1 - T0)) ms (cached layouts are reused), pushed in $((T2 - T1)) ms"

[[ $(wc -l <"$E2E_RUN/images.state") == 24 ]] || fail "images.state has $(wc -l <"$E2E_RUN/images.state") lines"
[[ $(cut -d' ' -f3 "$E2E_RUN/images.state" | sort -u | wc -l) == 24 ]] || fail "digests are not all distinct"
ok "images.state records 24 distinct digests"

[[ $(tier_services core | tr '\n' ' ') == "project-coordinator agent-orchestrator model-orchestration " ]] ||
	fail "tier_services core"
[[ $(tier_of web-dashboard) == ui && $(tier_of tool-integration) == supporting ]] || fail "tier_of"

ACCEPT="Accept: $MKIMAGE_ACCEPT"
reg_get() { in_ns h1 curl -fsS --max-time 10 -H "$ACCEPT" "http://$E2E_REGISTRY/v2/$1"; }
for s in "${E2E_SERVICES[@]}"; do
	for v in "${E2E_VERSIONS[@]}"; do
		d=$(image_digest "$s" "$v")
		reg_get "berrys/$s/manifests/$d" >"$E2E_RUN/m.json" || fail "manifest $s@$d from h1"
		[[ sha256:$(sha256sum <"$E2E_RUN/m.json" | cut -d' ' -f1) == "$d" ]] || fail "$s:$v digest"
		cfg=$(jq -r .config.digest "$E2E_RUN/m.json")
		reg_get "berrys/$s/blobs/$cfg" >"$E2E_RUN/c.json" || fail "config of $s:$v"
		[[ $(jq -r '.config.Labels["org.opencontainers.image.title"]' "$E2E_RUN/c.json") == "$s" &&
			$(jq -r '.config.Labels["org.opencontainers.image.version"]' "$E2E_RUN/c.json") == "$v" ]] ||
			fail "$s:$v labels"
		[[ $(jq -c .config.Cmd "$E2E_RUN/c.json") == "[\"--name\",\"$s\",\"--port\",\"8080\"]" ]] ||
			fail "$s:$v cmd"
	done
done
ok "every manifest pulled from h1 hashes to its recorded digest; labels and cmd name the service"

for v in v2 v3; do
	d=$(image_digest web-dashboard "$v")
	reg_get "berrys/web-dashboard/manifests/$d" >"$E2E_RUN/m.json"
	: >"$E2E_RUN/files"
	for l in $(jq -r '.layers[].digest' "$E2E_RUN/m.json"); do
		reg_get "berrys/web-dashboard/blobs/$l" | tar -tzf - >>"$E2E_RUN/files" || fail "layer $l"
	done
	grep -qx 'bin/berry-svc\|./bin/berry-svc' "$E2E_RUN/files" || fail "web-dashboard:$v has no bin/berry-svc"
	if [[ $v == v3 ]]; then
		grep -q 'UNHEALTHY' "$E2E_RUN/files" || fail "v3 lacks /UNHEALTHY"
	else
		! grep -q 'UNHEALTHY' "$E2E_RUN/files" || fail "v2 has /UNHEALTHY"
	fi
done
ok "v3 carries /UNHEALTHY (its health check fails), v2 does not"

[[ $(image_ref api-gateway v2) == "$E2E_REGISTRY/berrys/api-gateway@sha256:"* ]] || fail "image_ref"
[[ $(image_tag_ref api-gateway v2) == "$E2E_REGISTRY/berrys/api-gateway:v2" ]] || fail "image_tag_ref"
! image_digest api-gateway v9 2>/dev/null || fail "image_digest of an unknown version succeeded"
ok "image_ref / image_tag_ref / image_digest"
echo "selftest_images: $E2E_PASSED passed, 0 failed"
