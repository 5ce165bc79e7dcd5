# The two commands of the README:
#   make demo   set up, build, and run a disaster-recovery round trip on real OpenBao
#               (back up cluster A into demo/backups, force-restore into a fresh cluster B)
#   make test   set up (packages and test peers), build with ASan/UBSan, run the whole suite;
#               before it, each fuzz target for FUZZ_TEST_SECONDS (clang, libFuzzer) and the
#               threaded code's tests under ThreadSanitizer
#   make fuzz   each fuzz target for FUZZ_SECONDS
# They are safe to run again.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc)
FUZZ_TEST_SECONDS ?= 15
FUZZ_SECONDS ?= 60
# What build-fuzz configures (`make fuzz` passes FUZZ_SECONDS).
FUZZ_RUN_SECONDS ?= $(FUZZ_TEST_SECONDS)

.PHONY: demo test fuzz build build-asan build-fuzz build-tsan bench format clean

demo:
	@scripts/setup.sh --openbao
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@ninja -C $(BUILD) -j $(JOBS) bao-backup bao-cluster
	@scripts/demo.sh $(BUILD)

# The fuzz and ThreadSanitizer runs come first, so that the output still ends with the main
# suite's summary; a failure in any of the three fails `make test` (one before the main suite
# is named just before it starts).
test:
	@scripts/setup.sh --peers
	@$(MAKE) --no-print-directory build-asan build-fuzz build-tsan
	@failed=""; \
	  (cd $(FUZZ_BUILD) && ctest -j 2 --output-on-failure -L fuzz) || failed="$$failed fuzz"; \
	  (cd $(TSAN_BUILD) && ctest -j 2 --output-on-failure -L tsan --timeout 900) || \
	    failed="$$failed tsan"; \
	  [ -z "$$failed" ] || echo "make test: failed:$$failed (above); the main suite runs now," \
	    "and make test fails whatever its summary says"; \
	  (cd $(ASAN_BUILD) && ctest -j 2 --output-on-failure --timeout 900) || failed="$$failed main"; \
	  [ -z "$$failed" ]

fuzz:
	@scripts/setup.sh --fuzz
	@$(MAKE) --no-print-directory build-fuzz FUZZ_RUN_SECONDS=$(FUZZ_SECONDS)
	@cd $(FUZZ_BUILD) && ctest -j 2 --output-on-failure -L fuzz

build-asan:
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBAO_SANITIZE=ON \
	  -DBAO_BUILD_BENCH=OFF >/dev/null
	@ninja -C $(ASAN_BUILD) -j $(JOBS)

# Only the fuzz targets and the modules they link, with clang; ctest runs each target for
# FUZZ_RUN_SECONDS (label fuzz).
build-fuzz:
	@cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBAO_FUZZ=ON -DBAO_FUZZ_SECONDS=$(FUZZ_RUN_SECONDS) \
	  >/dev/null
	@ninja -C $(FUZZ_BUILD) -j $(JOBS)

# Only the tests labelled tsan (BAO_TSAN_TESTS in CMakeLists.txt) and the programs
# they start, with ThreadSanitizer.
build-tsan:
	@cmake -S . -B $(TSAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBAO_TSAN=ON \
	  -DBAO_BUILD_BENCH=OFF >/dev/null
	@ninja -C $(TSAN_BUILD) -j $(JOBS) tsan-tests

build:
	@scripts/setup.sh
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@ninja -C $(BUILD) -j $(JOBS)

bench: build
	@scripts/setup.sh --peers
	@scripts/install-peers.sh seed-executor || \
	  echo "make bench: the seed system's executor cannot be built here (above); it is left out"
	@bench/run.sh $(BUILD)

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(TSAN_BUILD) demo
