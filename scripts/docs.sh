#!/bin/sh
# Builds the API reference (docs/Doxyfile) into $1 (default build/docs) and
# fails if Doxygen warns: an undocumented public declaration, a broken
# reference. Run from the project root; `make docs` calls it.
set -eu
out=${1:-build/docs}
mkdir -p "$out"
log="$out/warnings.log"
RILL_DOCS_OUT="$out" doxygen docs/Doxyfile 2>"$log" >/dev/null
if [ -s "$log" ]; then
  cat "$log" >&2
  echo "docs: $(wc -l <"$log") warning(s); every public declaration needs a comment" >&2
  exit 1
fi
echo "docs: $out/html/index.html"
