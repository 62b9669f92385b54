# The front door: `make test` and `make demo` work on a fresh Debian machine.
BUILD ?= build
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
CTEST = ctest --output-on-failure -j$(JOBS)

# Each build directory is configured once; rerun cmake by hand to change flags.
configure = test -f $(1)/CMakeCache.txt || cmake -S . -B $(1) -DRILL_WERROR=ON $(2) $(CMAKE_FLAGS)
# The same, printing cmake's output only when it fails.
configure_quiet = test -f $(1)/CMakeCache.txt || { mkdir -p $(1) && \
  echo "configuring $(1) (log: $(1)/configure.log)" && \
  cmake -S . -B $(1) -DRILL_WERROR=ON $(2) $(CMAKE_FLAGS) >$(1)/configure.log 2>&1 || \
  { cat $(1)/configure.log; exit 1; }; }

.PHONY: all deps test demo asan tsan fuzz docs install bench-build bench bench-echo bench-tls bench-fiber clean

all: deps
	@$(call configure,$(BUILD),)
	cmake --build $(BUILD) -j$(JOBS)

deps:
	@sh scripts/install-deps.sh

test: all
	cd $(BUILD) && $(CTEST)

# Builds only what the demo runs (the static library and five samples),
# quietly, then runs it.
demo: deps
	@$(call configure_quiet,$(BUILD),)
	@JOBS=$(JOBS) sh scripts/demo.sh --build $(BUILD)

asan: deps
	@$(call configure,$(BUILD)-asan,-DRILL_SANITIZE=address,undefined)
	cmake --build $(BUILD)-asan -j$(JOBS)
	cd $(BUILD)-asan && $(CTEST)

# ThreadSanitizer maps memory at fixed places that address-space
# randomisation on recent kernels may take; setarch -R turns it off for the run.
tsan: deps
	@$(call configure,$(BUILD)-tsan,-DRILL_SANITIZE=thread)
	cmake --build $(BUILD)-tsan -j$(JOBS)
	cd $(BUILD)-tsan && setarch $$(uname -m) -R $(CTEST) -L 'threaded|fiber'

# libFuzzer targets (test/fuzz), built by clang in their own directory and
# run for FUZZ_SECONDS each; a crash fails the run.
FUZZ_SECONDS ?= 60
fuzz:
	@sh scripts/install-deps.sh fuzz
	@test -f $(BUILD)-fuzz/CMakeCache.txt || CC=clang CXX=clang++ cmake -S . -B $(BUILD)-fuzz \
	  -DRILL_WERROR=ON -DRILL_FUZZ=ON -DRILL_BUILD_TESTS=OFF -DRILL_BUILD_SAMPLES=OFF $(CMAKE_FLAGS)
	cmake --build $(BUILD)-fuzz -j$(JOBS)
	sh test/fuzz/run.sh $(BUILD)-fuzz $(FUZZ_SECONDS)

# The API reference (Doxygen, from the public headers) in $(BUILD)/docs;
# any warning, such as an undocumented public declaration, fails it.
docs:
	@sh scripts/install-deps.sh docs
	sh scripts/docs.sh $(BUILD)/docs

install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

bench-build:
	@sh scripts/install-deps.sh bench
	@$(call configure,$(BUILD)-bench,-DCMAKE_BUILD_TYPE=Release -DRILL_BUILD_BENCH=ON -DRILL_BUILD_TESTS=OFF)
	cmake --build $(BUILD)-bench -j$(JOBS)

# The core against libev (timers, many watchers).
bench: bench-build
	bash test/bench/run_core.sh $(BUILD)-bench

# Echo round trips, server CPU per round trip and memory per idle connection:
# rill callbacks, fibers and coroutines, Go, Asio (C++20 coroutines), raw epoll.
bench-echo: bench-build
	bash test/bench/echo/run_echo.sh $(BUILD)-bench

# TLS 1.3 echo round trips and handshakes per second, with the server's CPU
# per round trip or handshake: Go crypto/tls, libevent bufferevent_openssl,
# raw OpenSSL + epoll (docs/bench/tls.md).
bench-tls: bench-build
	bash test/bench/echo/tls/run_tls.sh $(BUILD)-bench

# Fiber switches and memory per idle fiber-held connection, against Go.
bench-fiber: bench-build
	bash test/bench/fiber/run_fiber.sh $(BUILD)-bench

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-bench $(BUILD)-fuzz
