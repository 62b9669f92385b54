#!/bin/sh
# Installs a rill build tree into a temporary prefix, then builds and runs
# test/install/consumer.c, a C program, against it every way the README's
# "Use rill in your project" shows:
#   shared  pkg-config     cc app.c $(pkg-config --cflags --libs rill)
#   static  pkg-config     cc app.c $(pkg-config --cflags --libs --static rill)
#                          (against a prefix holding only librill.a), and
#                          cc -static ... with everything installed
#   shared  find_package   project(app C) + rill::rill
#   static  find_package   project(app C) + rill::rill_static
#   static  by hand        cc app.c -I... .../librill.a -lcares -pthread
# then test/install/consumer.cpp, a C++17 program using rill.hpp (installed
# beside rill.h), with pkg-config and with find_package(rill) in a
# project(app CXX), shared and static;
# then the README's own lines (its sh and cmake blocks marked
# "<!-- readme: install -->"), run as they are written against
# consumer.c as app.c;
# and checks that each program is linked the way it asked (librill.so.0
# needed or not) and that none linked statically needs libstdc++.
#
# usage: run.sh BUILD_DIR INSTALL_TEST_DIR [CC] [SANITIZERS] [CXX]
set -eu

build=$1
here=$2
cc=${3:-cc}
sanitize=${4:-}
cxx=${5:-c++}

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
cflags_strict="-std=c99 -pedantic -Wall -Wextra -Werror $extra"
cxxflags_strict="-std=c++17 -pedantic -Wall -Wextra -Werror $extra"

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
[ -f "$prefix/include/rill.hpp" ] || fail "include/rill.hpp not installed"
for h in error base io timer signal export; do
  [ -f "$prefix/include/rill/$h.h" ] || fail "include/rill/$h.h not installed"
done
ls "$libdir"/librill.so* >/dev/null 2>&1 || fail "no shared librill in $libdir"
[ -f "$libdir/librill.a" ] || fail "no static librill.a in $libdir"
[ -f "$libdir/cmake/rill/rillConfig.cmake" ] || fail "no rillConfig.cmake in $libdir/cmake/rill"

LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH

# check NAME PROGRAM shared|static|static-cxx: runs the program and checks
# how it was linked (static-cxx: librill.a in a C++ program, which needs
# libstdc++ for itself).
check() {
  name=$1 program=$2 kind=$3
  needed=$(readelf -d "$program" 2>/dev/null | grep NEEDED || true)
  case "$kind" in
    shared)
      case "$needed" in
        *librill.so*) ;;
        *) soft_fail "$name: the program does not need librill.so" ;;
      esac
      ;;
    static | static-cxx)
      case "$needed" in
        *librill.so*) soft_fail "$name: the program needs librill.so, not librill.a" ;;
      esac
      case "$kind:$needed" in
        static:*libstdc++*) soft_fail "$name: the program linked with librill.a needs libstdc++" ;;
      esac
      ;;
  esac
  if "$program"; then
    echo "   $name: OK"
  else
    soft_fail "$name: the program did not run cleanly"
  fi
}

# --- pkg-config --------------------------------------------------------------
PKG_CONFIG_PATH=$pcdir
export PKG_CONFIG_PATH
cflags=$(pkg-config --cflags rill) || fail "pkg-config --cflags rill"
libs=$(pkg-config --libs rill) || fail "pkg-config --libs rill"
static_flags=$(pkg-config --cflags --libs --static rill) || fail "pkg-config --static rill"
echo "== pkg-config"
echo "   --cflags --libs:          $cflags $libs"
echo "   --cflags --libs --static: $static_flags"
case " $cflags $libs " in
  *"$prefix"*) ;;
  *)
    soft_fail "rill.pc does not point into the install prefix $prefix (cflags '$cflags', libs '$libs'): it is not relocatable (cmake --install --prefix); going on with --define-variable=prefix"
    cflags=$(pkg-config --define-variable=prefix="$prefix" --cflags rill)
    libs=$(pkg-config --define-variable=prefix="$prefix" --libs rill)
    static_flags=$(pkg-config --define-variable=prefix="$prefix" --cflags --libs --static rill)
    ;;
esac
# Cflags.private is a pkgconf extension (pkgconf's versions start at 1;
# freedesktop's pkg-config 0.29 ignores the field, which on ELF changes
# nothing: include/rill/export.h).
case " $static_flags " in
  *" -DRILL_STATIC "*) ;;
  *)
    case "$(pkg-config --version)" in
      0.*) echo "   (this pkg-config ignores Cflags.private: no -DRILL_STATIC)" ;;
      *) soft_fail "pkg-config --static --cflags rill does not define RILL_STATIC (include/rill/export.h)" ;;
    esac
    ;;
esac

echo "== shared, pkg-config"
# shellcheck disable=SC2086
if "$cc" $cflags_strict -o "$tmp/pc-shared" "$here/consumer.c" $cflags $libs; then
  check "shared, pkg-config" "$tmp/pc-shared" shared
else
  soft_fail "building consumer.c with pkg-config --cflags --libs rill"
fi

# The linker takes librill.so over librill.a when both are there, so the
# static library is linked through pkg-config where it is alone (a
# static-only install), or with -static.
echo "== static, pkg-config --static (a prefix with only librill.a)"
static_prefix=$tmp/static-prefix
cp -R "$prefix" "$static_prefix"
rm -f "$static_prefix/${libdir#"$prefix"/}"/librill.so*
static_pcdir=$static_prefix/${pcdir#"$prefix"/}
# shellcheck disable=SC2046,SC2086
if "$cc" $cflags_strict -o "$tmp/pc-static" "$here/consumer.c" \
  $(PKG_CONFIG_PATH=$static_pcdir pkg-config --cflags --libs --static rill); then
  check "static, pkg-config" "$tmp/pc-static" static
else
  soft_fail "building consumer.c with pkg-config --cflags --libs --static rill"
fi
if [ -z "$sanitize" ]; then
  # The sanitizers' runtimes cannot be linked statically, so only plain
  # builds try this. glibc warns that the resolver functions c-ares uses
  # still load shared libraries at run time: true, and harmless here.
  echo "== static, cc -static \$(pkg-config --static ...)"
  # shellcheck disable=SC2086
  if "$cc" $cflags_strict -static -o "$tmp/pc-static-all" "$here/consumer.c" $static_flags \
    >"$tmp/static-all.log" 2>&1; then
    if readelf -l "$tmp/pc-static-all" | grep -q INTERP; then
      soft_fail "cc -static gave a dynamically linked program"
    fi
    check "static, cc -static with pkg-config" "$tmp/pc-static-all" static
  else
    cat "$tmp/static-all.log" >&2
    soft_fail "building consumer.c with cc -static and pkg-config --static rill"
  fi
fi

# --- CMake find_package ------------------------------------------------------
# A C-only project: nothing may ask for a C++ compiler or runtime.
for target in rill rill_static; do
  echo "== find_package(rill), project(app C), rill::$target"
  proj=$tmp/proj-$target
  mkdir -p "$proj"
  cp "$here/consumer.c" "$proj/consumer.c"
  cat >"$proj/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(app C)
find_package(rill 0.1 REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE rill::$target)
CMAKE
  if ! cmake -S "$proj" -B "$proj/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$cflags_strict" -DCMAKE_EXE_LINKER_FLAGS="$extra" \
    >"$proj/cmake.log" 2>&1; then
    cat "$proj/cmake.log" >&2
    soft_fail "configuring the find_package consumer of rill::$target"
    continue
  fi
  if ! cmake --build "$proj/build" >"$proj/build.log" 2>&1; then
    cat "$proj/build.log" >&2
    soft_fail "building the find_package consumer of rill::$target"
    continue
  fi
  if [ "$target" = rill ]; then kind=shared; else kind=static; fi
  check "$kind, find_package rill::$target" "$proj/build/consumer" $kind
done

# --- librill.a by hand ---------------------------------------------------------
echo "== static, cc app.c librill.a -lcares -pthread"
hand_libs="-pthread"
if nm -u "$libdir/librill.a" 2>/dev/null | grep -q ' ares_'; then
  hand_libs="-lcares $hand_libs"
fi
# shellcheck disable=SC2086
if "$cc" $cflags_strict -I"$prefix/include" -o "$tmp/by-hand" "$here/consumer.c" \
  "$libdir/librill.a" $hand_libs; then
  check "static, cc with librill.a" "$tmp/by-hand" static
else
  soft_fail "building consumer.c with $libdir/librill.a $hand_libs"
fi

# --- C++: rill.hpp --------------------------------------------------------------
echo "== C++, shared, pkg-config"
# shellcheck disable=SC2086
if "$cxx" $cxxflags_strict -o "$tmp/cxx-pc-shared" "$here/consumer.cpp" $cflags $libs; then
  check "C++, shared, pkg-config" "$tmp/cxx-pc-shared" shared
else
  soft_fail "building consumer.cpp with pkg-config --cflags --libs rill"
fi
for target in rill rill_static; do
  echo "== C++, find_package(rill), project(app CXX), rill::$target"
  proj=$tmp/cxx-proj-$target
  mkdir -p "$proj"
  cp "$here/consumer.cpp" "$proj/consumer.cpp"
  cat >"$proj/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(app CXX)
find_package(rill 0.1 REQUIRED)
add_executable(consumer consumer.cpp)
target_compile_features(consumer PRIVATE cxx_std_17)
target_link_libraries(consumer PRIVATE rill::$target)
CMAKE
  if ! cmake -S "$proj" -B "$proj/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS="$cxxflags_strict" \
    -DCMAKE_EXE_LINKER_FLAGS="$extra" >"$proj/cmake.log" 2>&1; then
    cat "$proj/cmake.log" >&2
    soft_fail "configuring the C++ find_package consumer of rill::$target"
    continue
  fi
  if ! cmake --build "$proj/build" >"$proj/build.log" 2>&1; then
    cat "$proj/build.log" >&2
    soft_fail "building the C++ find_package consumer of rill::$target"
    continue
  fi
  if [ "$target" = rill ]; then kind=shared; else kind=static-cxx; fi
  check "C++, $kind, find_package rill::$target" "$proj/build/consumer" $kind
done

# --- The README's own lines ----------------------------------------------------
# The commands above are this script's; these are the README's, extracted
# from it (test/readme/extract_blocks.awk), so the README cannot promise a
# command that does not work. `cc` is the compiler under test with the
# strict flags, $PREFIX the install prefix, app.c test/install/consumer.c.
src=$(cd "$here/../.." && pwd)
blocks=$tmp/readme-blocks
mkdir -p "$blocks"
awk -v out="$blocks" -v stem=README -f "$src/test/readme/extract_blocks.awk" \
  "$src/README.md" >"$blocks/manifest" || fail "extracting README.md's blocks"
readme_lines=0
tab=$(printf '\t')
while IFS="$tab" read -r line lang markers <&3; do
  case " ${markers%%;*} " in *" install "*) ;; *) continue ;; esac
  block=$blocks/README-$line.block
  case "$lang" in
    sh)
      sed -e 's/^[[:space:]]*#.*//; s/[[:space:]]#.*//; s/[[:space:]]*$//' -e '/^$/d' \
        "$block" >"$block.cmds"
      n=0
      while IFS= read -r cmd <&4; do
        n=$((n + 1))
        case "$cmd" in
          *"cc -static "*) [ -z "$sanitize" ] || continue ;;  # no static sanitizer runtimes
        esac
        case "$cmd" in
          *-lcares*) nm -u "$libdir/librill.a" 2>/dev/null | grep -q ' ares_' || continue ;;
        esac
        echo "== README.md:$line: $cmd"
        dir=$tmp/readme-$line-$n
        mkdir -p "$dir"
        cp "$here/consumer.c" "$dir/app.c"
        # The README asks pkg-config --static for a prefix holding only
        # librill.a (with both, the linker takes librill.so).
        use_prefix=$prefix use_pcdir=$pcdir
        case "$cmd" in
          *--static*) use_prefix=$static_prefix use_pcdir=$static_pcdir ;;
        esac
        # The README's lines use $PREFIX and cc, defined here for eval.
        # shellcheck disable=SC2034,SC2086,SC2317
        if (
          cd "$dir" || exit 1
          PREFIX=$use_prefix
          PKG_CONFIG_PATH=$use_pcdir
          cc() { "$compiler" $cflags_strict "$@"; }
          compiler=$cc
          eval "$cmd"
        ) >"$dir/log" 2>&1; then
          case "$cmd" in
            *"cc -static "* | *--static*) kind=static ;;
            *librill.a*) kind=static ;;
            *) kind=shared ;;
          esac
          check "README.md:$line, $cmd" "$dir/a.out" $kind
        else
          cat "$dir/log" >&2
          soft_fail "README.md:$line: $cmd"
        fi
        readme_lines=$((readme_lines + 1))
      done 4<"$block.cmds"
      ;;
    cmake)
      # One project per rill:: target the block links: its lines, with the
      # executable declared after find_package and only that target's line.
      for target in $(grep -o 'rill::[A-Za-z0-9_]*' "$block" | sort -u); do
        echo "== README.md:$line: CMake with $target"
        proj=$tmp/readme-$line-${target#rill::}
        mkdir -p "$proj"
        cp "$here/consumer.c" "$proj/app.c"
        {
          echo "cmake_minimum_required(VERSION 3.16)"
          awk -v target="$target" '
            /target_link_libraries/ && index($0, target "\t") == 0 && index($0, target " ") == 0 &&
              index($0, target ")") == 0 { next }
            { print }
            /^find_package\(/ { print "add_executable(app app.c)" }' "$block"
        } >"$proj/CMakeLists.txt"
        if cmake -S "$proj" -B "$proj/build" -DCMAKE_PREFIX_PATH="$prefix" \
          -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$cflags_strict" \
          -DCMAKE_EXE_LINKER_FLAGS="$extra" >"$proj/log" 2>&1 &&
          cmake --build "$proj/build" >>"$proj/log" 2>&1; then
          if [ "$target" = rill::rill ]; then kind=shared; else kind=static; fi
          check "README.md:$line, CMake with $target" "$proj/build/app" $kind
        else
          cat "$proj/CMakeLists.txt" "$proj/log" >&2
          soft_fail "README.md:$line: the CMake lines with $target"
        fi
        readme_lines=$((readme_lines + 1))
      done
      ;;
  esac
done 3<"$blocks/manifest"
[ "$readme_lines" -gt 0 ] || soft_fail "README.md has no block marked <!-- readme: install -->"

if [ "$failures" -ne 0 ]; then
  echo "install test: $failures failure(s)" >&2
  exit 1
fi
echo "install test: OK"
