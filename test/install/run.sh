#!/bin/sh
# Installs a rill build tree into a temporary prefix, then builds and runs
# test/install/consumer.c against it twice: with pkg-config and with a CMake
# project using find_package(rill) and rill::rill.
#
# usage: run.sh BUILD_DIR INSTALL_TEST_DIR [CC] [SANITIZERS]
set -eu

build=$1
here=$2
cc=${3:-cc}
sanitize=${4:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rill-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix=$tmp/prefix

fail() {
  echo "install test: FAIL: $*" >&2
  exit 1
}

# A failure after which the other checks still say something useful.
failures=0
soft_fail() {
  echo "install test: FAIL: $*" >&2
  failures=$((failures + 1))
}

extra=""
if [ -n "$sanitize" ]; then
  # An instrumented library needs an instrumented program.
  extra="-fsanitize=$sanitize"
fi

echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }

# GNUInstallDirs may pick lib, lib64 or lib/<multiarch>.
pc=$(find "$prefix" -name rill.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || fail "no rill.pc installed under $prefix"
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
echo "   libdir: $libdir"
[ -f "$prefix/include/rill.h" ] || fail "include/rill.h not installed"
for h in error base io timer signal export; do
  [ -f "$prefix/include/rill/$h.h" ] || fail "include/rill/$h.h not installed"
done
ls "$libdir"/librill.so* >/dev/null 2>&1 || fail "no shared librill in $libdir"
[ -f "$libdir/librill.a" ] || fail "no static librill.a in $libdir"
[ -f "$libdir/cmake/rill/rillConfig.cmake" ] || fail "no rillConfig.cmake in $libdir/cmake/rill"

LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH

# --- pkg-config --------------------------------------------------------------
echo "== pkg-config"
PKG_CONFIG_PATH=$pcdir
export PKG_CONFIG_PATH
cflags=$(pkg-config --cflags rill) || fail "pkg-config --cflags rill"
libs=$(pkg-config --libs rill) || fail "pkg-config --libs rill"
echo "   cflags: $cflags"
echo "   libs:   $libs"
case " $cflags $libs " in
  *"$prefix"*) ;;
  *)
    soft_fail "rill.pc does not point into the install prefix $prefix (cflags '$cflags', libs '$libs'): it is not relocatable (cmake --install --prefix); going on with --define-variable=prefix"
    cflags=$(pkg-config --define-variable=prefix="$prefix" --cflags rill)
    libs=$(pkg-config --define-variable=prefix="$prefix" --libs rill)
    ;;
esac
# shellcheck disable=SC2086
"$cc" -std=c99 -pedantic -Wall -Wextra -Werror $extra -o "$tmp/consumer-pc" \
  "$here/consumer.c" $cflags $libs || fail "building consumer.c with pkg-config flags"
"$tmp/consumer-pc" || fail "consumer built with pkg-config did not run cleanly"

# --- CMake find_package ------------------------------------------------------
echo "== find_package(rill)"
mkdir -p "$tmp/proj"
cp "$here/consumer.c" "$tmp/proj/consumer.c"
cat >"$tmp/proj/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(rill_consumer C)
find_package(rill 0.1 REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE rill::rill)
CMAKE
cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$extra" -DCMAKE_EXE_LINKER_FLAGS="$extra" \
  >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log" >&2; fail "configuring the find_package consumer"; }
cmake --build "$tmp/proj/build" >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; fail "building the find_package consumer"; }
"$tmp/proj/build/consumer" || fail "consumer built with find_package did not run cleanly"

if [ "$failures" -ne 0 ]; then
  echo "install test: $failures failure(s)" >&2
  exit 1
fi
echo "install test: OK"
