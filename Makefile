# Thin wrapper over CMake. The README's commands:
#   bash scripts/install-deps.sh && make demo     # the main job on its built-in defaults
#   bash scripts/install-deps.sh && make test     # build everything and run all tests
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all build configure demo test test-golden bench clean deps

all: build

deps:
	bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

configure: $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	./$(BUILD)/synclap demo

test: build
	cd $(BUILD) && ctest -j$(JOBS) --output-on-failure --timeout 900

test-golden: build
	cd $(BUILD) && ctest -j$(JOBS) --output-on-failure -R Golden

bench: build
	bash bench/run_all.sh $(BUILD)

clean:
	rm -rf $(BUILD)
