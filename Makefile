# drover front door. `make demo` runs the main job, `make test` passes the tests.
#
#   make deps         install the Debian packages the build, tests and demo need
#   make              build into build/
#   make test         deps + build + every CTest test (root-only tests run as root)
#   make package      Debian packages drover-agent and drover-coordinator, and the
#                     agent install bundle, in build/packages/ (see docs/install.md)
#   make install      install into PREFIX (default /usr/local), DESTDIR-aware
#   make asan         unit tests under AddressSanitizer + UBSan (build-asan/)
#   make fuzz         libFuzzer targets for FUZZ_SECONDS each (build-fuzz/, clang)
#   make format       apply .clang-format;  make format-check  verify it
#   make demo         the end-to-end demo (see README.md); make demo-down cleans up
#                     after an interrupted one; make demo-systemd adds its systemd
#                     tier (a booted machine, a service with driver: systemd)
#   make demo-ha      two droverd nodes on a real PostgreSQL, the leader killed in
#                     the middle of a deployment, the other finishes it (docs/ha.md)
#   make soak         the chaos soak: 100 deployments under injected faults, every
#                     invariant checked (as root; docs/reliability.md)
#   make stops        STOPS (50) clean stops each of droverd (100 fleetsim agents,
#                     a deployment in flight) and drover-agent beside two CPU
#                     hogs, each under 3 s (docs/reliability.md)
#   make bench        the quick benchmarks (a few minutes) and their table;
#                     make bench-full: the long ones (docs/benchmarks.md)

BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 30
STOPS      ?= 50
CTEST_ARGS ?=

# Packages to build drover.
BUILD_PKGS := cmake make gcc clang libclang-rt-14-dev pkg-config \
	libnng-dev libprotobuf-c-dev protobuf-c-compiler libsodium-dev \
	libsqlite3-dev libcurl4-openssl-dev libjansson-dev libyaml-dev \
	libmicrohttpd-dev libarchive-dev libcmocka-dev clang-format libssl-dev \
	dpkg-dev file libsystemd-dev libpq-dev
# Packages the tests and the demo drive for real.
TEST_PKGS := sqlite3 postgresql curl jq openssl prometheus prometheus-alertmanager binutils libc6-dev ca-certificates iproute2 iptables zstd valgrind \
	docker-registry skopeo umoci podman runc catatonit haproxy \
	systemd systemd-container mmdebstrap lintian shellcheck man-db groff-base openssl gdb \
	chromium nodejs npm

# The dashboard test's one npm package (playwright-core, the library only:
# it drives Debian's chromium), installed here and never during a test.
DROVER_TEST_CACHE ?= $(HOME)/.cache/drover-test
PLAYWRIGHT_DIR ?= $(DROVER_TEST_CACHE)/playwright

# Packages the benchmarks need beyond the tests' (make bench installs them).
BENCH_PKGS := ansible-core linux-perf

SOURCES := $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null)

PREFIX     ?= /usr/local

.PHONY: all build deps test asan fuzz format format-check demo demo-systemd demo-ha demo-down soak clean \
	package install \
	bench bench-full bench-deps stops

all: build

deps:
	@sh scripts/deps.sh $(BUILD_PKGS) $(TEST_PKGS)
	@bash tests/e2e/ui/setup-playwright.sh "$(PLAYWRIGHT_DIR)"

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: deps build
	cd $(BUILD) && ctest --output-on-failure --timeout 600 $(CTEST_ARGS)

# The script itself, not CTest's it_stops: that test's TIMEOUT (900 s, sized
# for CI's 10 stops) would win over any --timeout and cut a long run short.
stops: deps build
	cd $(BUILD)/tests/integration && STOPS=$(STOPS) STOP_RESULTS="$(CURDIR)/$(BUILD)/stops.txt" \
		DROVER_TEST_TIMEOUT=7200 DROVER_BUILD="$(CURDIR)/$(BUILD)" \
		DROVER_AGENT="$(CURDIR)/$(BUILD)/agent/drover-agent" \
		DROVERD="$(CURDIR)/$(BUILD)/coordinator/droverd" \
		DROVER_CLI="$(CURDIR)/$(BUILD)/coordinator/ctl/drover" \
		FLEETSIM="$(CURDIR)/$(BUILD)/tests/bench/fleetsim" \
		bash "$(CURDIR)/tests/integration/test_stops.sh"

package: build
	cd $(BUILD) && cpack -G DEB -B "$(CURDIR)/$(BUILD)/packages"
	cmake --build $(BUILD) --target agent_bundle
	cp $(BUILD)/packaging/drover-agent-*-install.tar.gz $(BUILD)/packages/
	@ls -l $(BUILD)/packages/*.deb $(BUILD)/packages/*.tar.gz

install: build
	cmake --install $(BUILD) --prefix "$(PREFIX)"

bench-deps:
	@sh scripts/deps.sh $(BUILD_PKGS) $(TEST_PKGS) $(BENCH_PKGS)

bench: bench-deps build
	bash tests/bench/run.sh $(BUILD) quick

bench-full: bench-deps build
	bash tests/bench/run.sh $(BUILD) full

asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDROVER_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -L unit

fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DDROVER_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS) --target fuzz_all
	sh tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

format:
	clang-format -i $(SOURCES)

format-check:
	clang-format --dry-run --Werror $(SOURCES)

# The runbook's deployment on seven namespaced hosts (tests/e2e/demo.sh);
# as root. demo-down removes what an interrupted run left (kill -9).
demo: deps build
	E2E_BUILD_DIR="$(CURDIR)/$(BUILD)" bash tests/e2e/demo.sh

# The demo plus its systemd tier (DEMO_SYSTEMD=1): a booted Debian machine
# (systemd-nspawn) runs a service with driver: systemd; about a minute more.
demo-systemd: deps build
	DEMO_SYSTEMD=1 E2E_BUILD_DIR="$(CURDIR)/$(BUILD)" bash tests/e2e/demo.sh

# High availability in about a minute (tests/e2e/demo_ha.sh): a throwaway
# PostgreSQL, two droverd nodes, three agents, kill -9 of the leader in the
# middle of a rolling deployment; all on 127.0.0.1.
demo-ha: deps build
	DROVERD="$(CURDIR)/$(BUILD)/coordinator/droverd" \
	DROVER_AGENT="$(CURDIR)/$(BUILD)/agent/drover-agent" \
	DROVER_CLI="$(CURDIR)/$(BUILD)/coordinator/ctl/drover" \
	DROVER_BUILD="$(CURDIR)/$(BUILD)" bash tests/e2e/demo_ha.sh

demo-down:
	bash tests/e2e/cleanup.sh --all-mine

# The chaos soak (tests/soak/soak.sh): 100 deployments of the reference
# system under injected faults, invariants checked after each; as root.
# SOAK_SEED=N replays a fault schedule; SOAK_DEPLOYMENTS=N runs fewer.
soak: build
	E2E_BUILD_DIR="$(CURDIR)/$(BUILD)" bash tests/soak/soak.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz
