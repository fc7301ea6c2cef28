# ncelab -- the two commands of the README (`make demo`, `make test`) and friends.
#   make demo    install missing packages (as root), build, run `ncelab demo` (writes out/)
#   make test    install missing packages (as root), build, run the whole test suite (ctest)
#   make bench   ncelab and the PyTorch baselines side by side, with ratios (bench/run.sh)
#   make sanitize-test   the suite under AddressSanitizer and UndefinedBehaviorSanitizer
#   make fuzz    every libFuzzer target in tests/fuzz/ for FUZZ_SECONDS each (default 60)
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=
ifeq ($(WERROR),1)
CMAKE_FLAGS += -DNCELAB_WERROR=ON
endif

.PHONY: all deps build demo test bench sanitize-test clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	./$(BUILD)/ncelab demo --out out

test: build
	cd $(BUILD) && ctest --output-on-failure -j 1

bench: build
	BIN=$(BUILD)/ncelab bash bench/run.sh

sanitize-test: deps
	@cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNCELAB_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j 1

clean:
	rm -rf $(BUILD) $(BUILD)-asan

.PHONY: fuzz
fuzz:
	bash scripts/fuzz.sh
