# The two commands of the README:
#   make demo   set up, build, and run a disaster-recovery round trip on real OpenBao
#               (back up cluster A into demo/backups, force-restore into a fresh cluster B)
#   make test   set up (packages and test peers), build with ASan/UBSan, run the whole suite
# Both are safe to run again.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)

.PHONY: demo test build build-asan bench format clean

demo:
	@scripts/setup.sh --openbao
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@ninja -C $(BUILD) -j $(JOBS) bao-backup bao-cluster
	@scripts/demo.sh $(BUILD)

test:
	@scripts/setup.sh --peers
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBAO_SANITIZE=ON \
	  -DBAO_BUILD_BENCH=OFF >/dev/null
	@ninja -C $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ctest -j 2 --output-on-failure --timeout 900

build:
	@scripts/setup.sh
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@ninja -C $(BUILD) -j $(JOBS)

bench: build
	@scripts/setup.sh --peers
	@bench/run.sh $(BUILD)

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) demo
