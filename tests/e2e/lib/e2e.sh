# shellcheck shell=bash
# e2e.sh: the multi-host end-to-end harness of drover. Source this one file:
#
#   source "$(dirname "$0")/lib/e2e.sh"
#   e2e_require_root                      # exit 77 unless root + ip netns
#   net_up core-1 core-2 ui-1             # or: net_up 7 (h1..h7); installs
#                                         # the teardown trap
#   registry_up; images_build; images_push
#   proc_start svc ui-1 "$(e2e_bin berry-svc)" --name x --port 8080
#   in_ns ui-1 curl -fsS "http://$(addr_of control):5000/v2/"
#
# Modules: common.sh (fail/ok/skip, wait_for, state file), net.sh (network,
# link faults, in_ns), proc.sh (processes by PID), services.sh (registry,
# HAProxy), images.sh (the eight services as images), drover.sh (droverd,
# agents, the CLI), reference.sh (the reference system, deployments, the
# checks of a scenario), prom.sh (Prometheus), and tests/lib/
# registry.sh and mkimage.sh. See docs/e2e.md.
# shellcheck source-path=SCRIPTDIR

_E2E_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$_E2E_HERE/../../lib/budget.sh"
source "$_E2E_HERE/../../lib/registry.sh"
source "$_E2E_HERE/../../lib/mkimage.sh"
source "$_E2E_HERE/../../lib/svcuser.sh"
source "$_E2E_HERE/common.sh"
source "$_E2E_HERE/net.sh"
source "$_E2E_HERE/proc.sh"
source "$_E2E_HERE/services.sh"
source "$_E2E_HERE/images.sh"
source "$_E2E_HERE/drover.sh"
source "$_E2E_HERE/reference.sh"
source "$_E2E_HERE/prom.sh"

# The watchdog that ends the script before CTest would kill it (tests/lib/budget.sh).
budget_start
