# framepress: `make run` serves the embedded default; `make test` builds and passes every test.
# Both install what is missing first (Debian packages, the web page's npm packages, Chromium).

BUILD_DIR ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps build web run test test-unit test-e2e clean

all: build

deps:
	scripts/install-deps.sh

$(BUILD_DIR)/build.ninja: CMakeLists.txt | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

web:
	scripts/install-web.sh

run: build web
	$(BUILD_DIR)/src/app/framepress serve

test: build web
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

test-unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

test-e2e: build web
	cd $(BUILD_DIR) && ctest --output-on-failure -L 'e2e|web'

clean:
	rm -rf $(BUILD_DIR) web/dist
