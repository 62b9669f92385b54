#!/bin/sh
# What the shared library exports (include/rill/export.h):
#  1. ELF: the dynamic symbol table of librill.so holds exactly the functions
#     the public headers declare with RILL_API, no fewer (a user's link
#     would fail) and no more (rill's internals would become an ABI).
#  2. PE/COFF, when clang and LLVM's linker and tools are installed
#     (`scripts/install-deps.sh windows`; CI does): a probe
#     function declared with RILL_API is exported from a DLL built with
#     RILL_BUILDING_SHARED and imported by a program that defines nothing;
#     built with RILL_STATIC into a static library, it links into a program
#     that defines RILL_STATIC, exports nothing from a DLL that links it, and
#     does not link into a program that forgets RILL_STATIC (which is why
#     rill::rill_static and `pkg-config --static` define it).
#
# usage: check_exports.sh SHARED_LIBRARY INCLUDE_DIR CC
set -eu

lib=$1
include=$(cd "$2" && pwd)
cc=$3

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rill-exports.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
  echo "exports: FAIL: $*" >&2
  exit 1
}

# --- 1. ELF -------------------------------------------------------------------
# The declarations as the compiler sees them: RILL_API expanded to the
# visibility attribute, comments gone.
{
  echo '#include "rill.h"'
  for h in "$include"/rill/*.h; do
    echo "#include \"rill/$(basename "$h")\""
  done
} >"$tmp/all.c"
"$cc" -E -P -I"$include" "$tmp/all.c" >"$tmp/all.i" || fail "preprocessing the public headers"
tr '\n' ' ' <"$tmp/all.i" |
  grep -o 'visibility *( *"default" *) *) *)[^;{]*(' |
  grep -o 'rill_[A-Za-z0-9_]*[[:space:]]*($' | tr -d ' (' | sort -u >"$tmp/declared"
nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u >"$tmp/exported"

[ -s "$tmp/declared" ] || fail "found no RILL_API declaration in $include/rill"
echo "== $(wc -l <"$tmp/declared") RILL_API functions declared, $(wc -l <"$tmp/exported") symbols exported by $lib"
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
[ -z "$missing" ] || fail "declared RILL_API but not exported: $missing"
[ -z "$extra" ] || fail "exported but not declared RILL_API in a public header: $extra"

# --- 2. PE/COFF -------------------------------------------------------------
ar_tool=
for t in llvm-ar llvm-ar-14 llvm-ar-15 llvm-ar-16; do
  command -v "$t" >/dev/null 2>&1 && { ar_tool=$t; break; }
done
if ! command -v clang >/dev/null 2>&1 || ! command -v lld-link >/dev/null 2>&1 || [ -z "$ar_tool" ] ||
  ! command -v llvm-readobj >/dev/null 2>&1; then
  echo "== PE/COFF: skipped (needs clang, lld-link, llvm-ar and llvm-readobj: scripts/install-deps.sh windows)"
  echo "exports: OK"
  exit 0
fi

echo "== PE/COFF (clang --target=x86_64-pc-windows-msvc, lld-link)"
cat >"$tmp/probe.c" <<'EOF'
#include "rill/export.h"
RILL_API int rill_probe(int x) { return x + 1; }
EOF
cat >"$tmp/user.c" <<'EOF'
#include "rill/export.h"
RILL_API int rill_probe(int x);
int mainCRTStartup(void) { return rill_probe(41) == 42 ? 0 : 1; }
EOF
win() { clang --target=x86_64-pc-windows-msvc -ffreestanding -I"$include" "$@"; }
link() { lld-link /nologo "$@" >"$tmp/link.log" 2>&1; }
cd "$tmp"

win -DRILL_BUILDING_SHARED -c probe.c -o probe-dll.obj
win -c user.c -o user-dll.obj
link /dll /noentry /out:rill.dll /implib:rill.lib probe-dll.obj || { cat link.log >&2; fail "linking the DLL"; }
link /subsystem:console /out:user-dll.exe user-dll.obj rill.lib ||
  { cat link.log >&2; fail "a program using the DLL does not link"; }
llvm-readobj --coff-exports rill.dll | grep -q 'Name: rill_probe$' || fail "the DLL does not export rill_probe"
llvm-readobj --coff-imports user-dll.exe | grep -q 'Symbol: rill_probe' ||
  fail "the program does not import rill_probe from the DLL"

win -DRILL_STATIC -c probe.c -o probe-static.obj
"$ar_tool" rc rill_static.lib probe-static.obj
win -DRILL_STATIC -c user.c -o user-static.obj
link /subsystem:console /out:user-static.exe user-static.obj rill_static.lib ||
  { cat link.log >&2; fail "a program defining RILL_STATIC does not link the static library"; }
! llvm-readobj --coff-imports user-static.exe | grep -q 'rill' ||
  fail "a program linked with the static library imports rill"
link /dll /noentry /out:other.dll /wholearchive:rill_static.lib || { cat link.log >&2; fail "linking a DLL from the static library"; }
! llvm-readobj --coff-exports other.dll | grep -q 'rill_probe' ||
  fail "a DLL that links the static library re-exports rill_probe"
if link /subsystem:console /out:forgot.exe user-dll.obj rill_static.lib; then
  fail "a program without RILL_STATIC linked the static library: export.h no longer imports by default"
fi
grep -q 'undefined symbol.*rill_probe' link.log || { cat link.log >&2; fail "unexpected link error"; }
echo "exports: OK"
