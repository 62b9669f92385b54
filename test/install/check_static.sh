#!/bin/sh
# librill.a needs no C++ runtime (README, "Use rill in your project";
# lib/core/cxx_runtime.h says how the library keeps it so):
#  1. no member of the archive refers to a C++ runtime symbol the archive
#     does not define itself: a mangled C++ name (_Z..., which covers std::,
#     operator new and delete, typeinfo and vtables) or the C++ ABI's
#     __cxa_* / __gxx_* / __dynamic_cast. The one allowed is the weak
#     reference to the personality routine, __gxx_personality_v0.
#  2. a C program links every member of the archive (--whole-archive) with
#     the C compiler alone, `-lcares -pthread` (and `-lssl -lcrypto` when
#     built with TLS), and runs without libstdc++.
#
# usage: check_static.sh STATIC_LIBRARY INCLUDE_DIR CONSUMER_C CC [SANITIZERS]
set -eu

lib=$1
include=$2
consumer=$3
cc=$4
sanitize=${5:-}

if [ "$(uname -s)" != Linux ]; then
  echo "static: skipped (the check reads ELF archives with GNU ld options)"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rill-static.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
  echo "static: FAIL: $*" >&2
  exit 1
}

# --- 1. what the archive asks for -----------------------------------------
# nm -P: "name type [value size]", one line per symbol of every member.
nm -P -g "$lib" >"$tmp/symbols" || fail "nm $lib"
awk 'NF >= 2 && $2 !~ /^[Uwv]$/ { print $1 }' "$tmp/symbols" | sort -u >"$tmp/defined"
awk 'NF >= 2 && $2 == "U" { print $1 }' "$tmp/symbols" | sort -u | comm -23 - "$tmp/defined" >"$tmp/strong"
awk 'NF >= 2 && $2 ~ /^[wv]$/ { print $1 }' "$tmp/symbols" | sort -u | comm -23 - "$tmp/defined" >"$tmp/weak"
cxx_runtime='^(_Z|__cxa_|__gxx_|__dynamic_cast)'
bad=$(grep -E "$cxx_runtime" "$tmp/strong" || true)
bad_weak=$(grep -E "$cxx_runtime" "$tmp/weak" | grep -v '^__gxx_personality_v0$' || true)
if [ -n "$bad$bad_weak" ]; then
  names=$(printf '%s\n%s\n' "$bad" "$bad_weak" | grep .)
  echo "static: librill.a asks the C++ runtime for:" >&2
  echo "$names" | (c++filt 2>/dev/null || cat) | sed 's/^/  /' >&2
  echo "static: which members ask:" >&2
  nm -A -u "$lib" | grep -E ":.* [Uw] ($(echo "$names" | paste -sd'|' -))\$" | sed 's/^/  /' >&2
  fail "librill.a needs the C++ runtime (lib/core/cxx_runtime.h lists what to avoid)"
fi
echo "== librill.a refers to $(wc -l <"$tmp/strong") outside symbols, none from the C++ runtime"

# --- 2. a C program links it with the C compiler ----------------------------
extra=""
if [ -n "$sanitize" ]; then
  extra="-fsanitize=$sanitize"
fi
libs="-pthread"
if grep -q '^ares_' "$tmp/strong"; then
  libs="-lcares $libs"
fi
if grep -q '^SSL_' "$tmp/strong"; then  # built with TLS (lib/tls)
  libs="-lssl -lcrypto $libs"
fi
echo "== $cc consumer.c -Wl,--whole-archive librill.a -Wl,--no-whole-archive $libs"
# shellcheck disable=SC2086
"$cc" -std=c99 -pedantic -Wall -Wextra -Werror $extra -I"$include" -o "$tmp/consumer" "$consumer" \
  -Wl,--whole-archive "$lib" -Wl,--no-whole-archive $libs ||
  fail "a C program does not link librill.a with the C compiler and $libs"
if readelf -d "$tmp/consumer" | grep -q 'NEEDED.*libstdc++'; then
  fail "the C program linked with librill.a needs libstdc++"
fi
"$tmp/consumer" || fail "the C program linked with librill.a did not run cleanly"
echo "static: OK"
