#!/usr/bin/env bash
# fault_artifacts.sh (CTest e2e_fault_artifacts): a missing or bad artifact
# fails a deployment in prestage, before any host is touched (the runbook's
# "verify build artifacts" before any downtime). Release 1 runs.
#
#   registry  the registry is stopped, then release 2 (images pinned by
#             digest, so nothing needs the registry at submission) is
#             deployed: every host fails to pull, the deployment fails with
#             zero hosts changed. The registry comes back and the same plan
#             succeeds: every host runs v2.
#   corrupt   one byte of release 3's layer (shared by its eight images) is
#             flipped in the registry's storage: the hosts' pulls fail the
#             SHA-256 check (never retried), the deployment fails in prestage
#             with zero hosts changed.
#
# Each: the event history is complete, the agents converge.
#
#   sudo bash tests/e2e/fault_artifacts.sh
#   sudo E2E_ONLY=corrupt bash tests/e2e/fault_artifacts.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e.sh"

ref_require
ref_up
BASE=v1

# expect_prestage_failure ID WHAT: failed, nothing touched, fleet unchanged.
expect_prestage_failure() {
	local id=$1 st touched
	st=$(dep_wait_final "$id" 180) || fail "$id did not end"
	[[ $st == failed ]] || fail "$id ended $st ($(dep_get "$id" | jq -r .reason)), expected failed"
	ok "$id failed: $(dep_get "$id" | jq -r .reason)"
	dep_get "$id" | jq -r .reason | grep -qi prestage || fail "$id did not fail in prestage"
	touched=$(dep_hosts_touched "$id")
	[[ -z $touched ]] || fail "$id touched hosts: $touched"
	ok "$id: zero hosts changed (no host went beyond prestage)"
	assert_fleet "$BASE"
	assert_events "$id"
	assert_converged
}

if scenario registry "registry down during prestage"; then
	plan_render berrys-v2.yaml "$E2E_RUN/v2.yaml" || fail "plan"
	plan_pin "$E2E_RUN/v2.yaml" v2 || fail "plan_pin"
	registry_down || fail "registry_down"
	in_ns control curl -s --max-time 2 -o /dev/null "http://$E2E_REGISTRY/v2/" &&
		fail "the registry still answers"
	ok "registry stopped"
	id=$(dep_submit "$E2E_RUN/v2.yaml") || fail "submit"
	expect_prestage_failure "$id"
	[[ $(db_sql 'SELECT version FROM schema_version;') == 41 ]] || fail "schema changed"
	registry_up || fail "registry back"
	ok "registry back"
	dep_deploy "$E2E_RUN/v2.yaml" succeeded || fail "release 2 after the registry came back"
	ok "$DEP_ID: the same plan succeeds once the registry is back"
	assert_fleet v2
	assert_converged
	BASE=v2
fi

if scenario corrupt "a corrupted image fails in prestage"; then
	mf=$(in_ns control curl -fsS --max-time 5 -H "Accept: $MKIMAGE_ACCEPT" \
		"http://$E2E_REGISTRY/v2/berrys/api-gateway/manifests/v3") || fail "manifest of v3"
	layer=$(jq -r '.layers[-1].digest' <<<"$mf")
	hex=${layer#sha256:}
	blob=$E2E_RUN/registry/storage/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data
	[[ -f $blob ]] || fail "no blob file $blob"
	cp "$blob" "$E2E_RUN/layer-v3.orig"
	size=$(stat -c %s "$blob")
	off=$((size / 2))
	byte=$(od -An -tu1 -j "$off" -N1 "$blob" | tr -d ' ')
	printf '%b' "\\$(printf '%03o' $(((byte + 1) % 256)))" |
		dd of="$blob" bs=1 seek="$off" count=1 conv=notrunc status=none
	[[ $(sha256sum <"$blob" | cut -d' ' -f1) != "$hex" ]] || fail "corruption did not change the blob"
	ok "release 3's layer ${layer:0:19}... corrupted in the registry (byte $off of $size)"
	plan_render berrys-v3.yaml "$E2E_RUN/v3.yaml" || fail "plan"
	id=$(dep_submit "$E2E_RUN/v3.yaml") || fail "submit"
	expect_prestage_failure "$id"
	msg=$(dep_get "$id" | jq -r '[.tiers[].services[].hosts[] | select(.state == "failed") | .message][0] // ""')
	echo "# a host says: $msg"
	grep -qiE 'mismatch|does not match|verif|corrupt' <<<"$msg" ||
		fail "no host says the image did not verify: $(dep_get "$id" | jq -c '[.tiers[].services[].hosts[] | .message]')"
	ok "the hosts report the failed verification"
	cp "$E2E_RUN/layer-v3.orig" "$blob"
fi
echo "fault_artifacts: $E2E_PASSED checks passed"
