# framepress: `make run` serves the embedded default; `make test` builds and passes every test.
# Both install what is missing first (Debian packages, the web page's npm packages, Chromium).

BUILD_DIR ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps services build web run test test-unit test-e2e test-faults clean

all: build

deps:
	scripts/install-deps.sh

$(BUILD_DIR)/build.ninja: CMakeLists.txt | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

web:
	scripts/install-web.sh

# The real servers the integration tests start: Apache Kafka (jars from Maven Central) and SeaweedFS (built
# from the Go module proxy), both cached under ~/.cache/framepress; instant once cached.
services:
	scripts/seaweedfs.sh install
	if [ -x scripts/kafka.sh ]; then scripts/kafka.sh install; fi

run: build web
	$(BUILD_DIR)/src/app/framepress serve

test: build web services
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

test-unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

test-e2e: build web
	cd $(BUILD_DIR) && ctest --output-on-failure -L 'e2e|web'

# Processes killed at random moments over many jobs (also part of `make test`); prints a table per run.
# FRAMEPRESS_FAULT_SEED=N repeats a run's random choices.
test-faults: build services
	cd $(BUILD_DIR) && ctest --output-on-failure -V -L faults

clean:
	rm -rf $(BUILD_DIR) web/dist

# Benchmarks (issue 8), not tests: writes docs/BENCHMARKS.md (about 20 minutes on 2 cores); BENCH_QUICK=1 for a
# smoke run into build/bench/. Uses the built binary (builds only `framepress` when it is missing).
.PHONY: bench
bench:
	BUILD_DIR=$(BUILD_DIR) bench/run.sh

# libFuzzer targets (fuzz/: clang, ASan and UBSan, their own tree in $(BUILD_DIR)/fuzz): `make fuzz` runs each for
# FUZZ_SECONDS (default 300); `make fuzz-smoke` for 20 s, as `make test` does (ctest label fuzz).
FUZZ_SECONDS ?= 300
.PHONY: fuzz fuzz-smoke
fuzz:
	FUZZ_BUILD_DIR=$(abspath $(BUILD_DIR))/fuzz fuzz/run.sh --seconds $(FUZZ_SECONDS)
fuzz-smoke:
	FUZZ_BUILD_DIR=$(abspath $(BUILD_DIR))/fuzz fuzz/run.sh --seconds 20
