# Loupe: the two commands in README.md are `make run` and `make test`.
BUILD      ?= build
BUILD_TYPE ?= Release
LOUPE_WERROR ?= OFF
JOBS       ?= $(shell nproc)
CMAKE_FLAGS = -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DLOUPE_WERROR=$(LOUPE_WERROR)

.PHONY: run setup configure build build-cli test npm demo fuzz-build fuzz clean format

# Install what is missing, build in Release and run the main job (no download needed).
run: setup build-cli demo

setup:
	@bash tools/setup.sh

configure:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

build-cli: configure
	cmake --build $(BUILD) -j $(JOBS) --target loupe

# The guided tour: synthesizes a small random-weight model (no download) and walks through
# inspect, the rendered prompt, generation with probabilities and temperature.
demo:
	$(BUILD)/loupe demo

# Build everything and run every test. Tests that need ../shared/testdata find it through
# LOUPE_TESTDATA (default ../shared/testdata) and are reported as skipped without it.
test: setup build npm
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The openai / ollama npm clients the end-to-end tests drive (versions pinned in
# tests/npm/package-lock.json). Without npm the npm.* tests are reported as skipped.
npm:
	@if command -v npm > /dev/null; then npm ci --prefix tests/npm --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the npm.* end-to-end tests will be skipped"; fi

fuzz-build:
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DLOUPE_FUZZ=ON -DLOUPE_BUILD_TESTS=OFF
	cmake --build build-fuzz -j $(JOBS) --target fuzz_gguf_reader

# Ten minutes of the GGUF reader fuzzer under ASan+UBSan (see fuzz/README.md).
fuzz: fuzz-build
	mkdir -p /tmp/gguf-corpus fuzz/artifacts && cp fuzz/corpus/gguf/* /tmp/gguf-corpus/
	./build-fuzz/fuzz/fuzz_gguf_reader -max_total_time=600 -max_len=65536 -rss_limit_mb=2048 \
	  -artifact_prefix=fuzz/artifacts/ /tmp/gguf-corpus fuzz/corpus/gguf

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) build-fuzz
