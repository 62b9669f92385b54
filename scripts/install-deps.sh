#!/bin/sh
# Installs what building rill needs, on Debian/Ubuntu, and does nothing when
# everything is already there. Used by `make` and by CI.
#
# With no argument: what `make`, `make test`, `make demo`, `make asan` and
# `make tsan` need (a C and C++ compiler, make, cmake, pkg-config, c-ares,
# cmocka) and nothing more. Arguments add what other targets need:
#   bench   libev (the core benchmarks), taskset (pinning), the Go toolchain
#           (the Go columns), standalone Asio (the echo benchmark's Asio
#           server), liburing (the raw io_uring echo server; rill's own
#           io_uring backend needs only the kernel headers), OpenSSL 3 and
#           libevent_openssl (the TLS echo benchmark): `make bench`,
#           `make bench-echo`, `make bench-tls`, `make bench-fiber`
#   go      the Go toolchain alone (the seed samples' comparison with Go)
#   fuzz    clang with its libFuzzer and sanitizer runtimes: `make fuzz`
#   windows clang, lld and the LLVM tools, with which the install tests also
#           check export.h's Windows (PE/COFF) imports and exports; CI
#   stress  stress-ng (test/stress/run_under_load.sh)
#   docs    doxygen (the API reference): `make docs`
set -e

missing=""
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need_pc() { pkg-config --exists "$1" 2>/dev/null || missing="$missing $2"; }
need_file() { [ -e "$1" ] || missing="$missing $2"; }

need_cmd cc gcc
need_cmd c++ g++
need_cmd make make
need_cmd cmake cmake
need_cmd pkg-config pkg-config
need_pc cmocka libcmocka-dev
need_pc libcares libc-ares-dev

fuzz=false
for want in "$@"; do
  case "$want" in
    bench)
      # libevent, libuv: the echo benchmark's peer servers; gnuplot: its chart
      need_pc libevent_core libevent-dev
      need_pc libuv libuv1-dev
      need_cmd gnuplot gnuplot-nox
      need_file /usr/include/ev.h libev-dev
      need_cmd taskset util-linux
      need_cmd go golang-go
      need_file /usr/include/asio.hpp libasio-dev
      need_pc liburing liburing-dev
      # the TLS echo benchmark: OpenSSL 3, libevent's OpenSSL bufferevents
      # (in libevent-dev), the openssl command for its throwaway certificates
      need_pc libssl libssl-dev
      need_pc libevent_openssl libevent-dev
      need_cmd openssl openssl
      ;;
    go) need_cmd go golang-go ;;
    fuzz)
      need_cmd clang clang
      fuzz=true
      ;;
    windows)
      need_cmd clang clang
      need_cmd lld-link lld
      need_cmd llvm-ar llvm
      need_cmd llvm-readobj llvm
      ;;
    stress) need_cmd stress-ng stress-ng ;;
    docs) need_cmd doxygen doxygen ;;
    *)
      echo "install-deps.sh: unknown argument '$want' (bench, go, fuzz, windows, stress, docs)" >&2
      exit 2
      ;;
  esac
done

# clang's runtimes (libFuzzer, ASan) come in libclang-rt-N-dev, which clang
# only recommends: check that a fuzz target links, and name the package for
# the clang version installed.
fuzz_runtime_missing() {
  command -v clang >/dev/null 2>&1 || return 1
  probe=$(mktemp -d)
  printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$probe/f.c"
  if clang -fsanitize=fuzzer,address "$probe/f.c" -o "$probe/f" >/dev/null 2>&1; then
    rm -rf "$probe"
    return 1
  fi
  rm -rf "$probe"
  return 0
}
fuzz_runtime_package() { echo "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"; }
if $fuzz && fuzz_runtime_missing; then
  missing="$missing $(fuzz_runtime_package)"
fi

# One package may be named by several checks.
# shellcheck disable=SC2086
missing=$(printf '%s\n' $missing | awk 'NF && !seen[$0]++' | tr '\n' ' ' | sed 's/ $//')
[ -z "$missing" ] && exit 0

echo "rill: installing $missing"
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "rill: please install: $missing" >&2
  exit 1
fi
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# clang was just installed: its runtimes may still be missing.
if $fuzz && fuzz_runtime_missing; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$(fuzz_runtime_package)" >/dev/null
fi
