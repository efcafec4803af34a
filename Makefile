# framepress: `make run` serves the embedded default; `make test` builds and passes every test.
# Both install what is missing first (Debian packages, the web page's npm packages, Chromium).

BUILD_DIR ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps services build web run test test-unit test-e2e clean

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

clean:
	rm -rf $(BUILD_DIR) web/dist
