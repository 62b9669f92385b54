#!/bin/sh
# extract_example.sh README MARKER OUT
# Writes to OUT the first ```c block of README that follows the first line
# starting with MARKER (a heading, or the sentence that introduces the
# block). Fails if there is none, so a README edit that loses an example
# breaks the build instead of silently testing nothing.
set -eu
readme=$1
marker=$2
out=$3
awk -v marker="$marker" '
  state == 0 && index($0, marker) == 1 { state = 1; next }
  state == 1 && /^```c[ \t]*$/ { state = 2; next }
  state == 2 && /^```[ \t]*$/ { exit }
  state == 2 { print }
' "$readme" >"$out.tmp"
if [ ! -s "$out.tmp" ]; then
  rm -f "$out.tmp"
  echo "extract_example.sh: no \`\`\`c block after \"$marker\" in $readme" >&2
  exit 1
fi
mv "$out.tmp" "$out"
