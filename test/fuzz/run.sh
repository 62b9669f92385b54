#!/bin/sh
# Runs every fuzz target of a RILL_FUZZ build for a bounded time each.
#   sh test/fuzz/run.sh BUILD_DIR [SECONDS]
# Each target starts from its committed seed corpus (test/fuzz/corpus/NAME,
# read only) and keeps what it finds in BUILD_DIR/fuzz-corpus/NAME; a crash
# leaves its input in BUILD_DIR/fuzz-artifacts/ and fails the run. The
# last line per target gives its executions and coverage (cov:, ft:).
set -eu
build=$1
seconds=${2:-60}
src=$(cd "$(dirname "$0")" && pwd)
list="$build/fuzz-targets.txt"
[ -s "$list" ] || { echo "fuzz: no $list (configure with -DRILL_FUZZ=ON)" >&2; exit 1; }

failed=""
summary=""
while read -r target; do
  [ -n "$target" ] || continue
  exe="$build/test/fuzz/$target"
  work="$build/fuzz-corpus/$target"
  artifacts="$build/fuzz-artifacts"
  mkdir -p "$work" "$artifacts"
  log="$build/fuzz-$target.log"
  echo "fuzz: $target for ${seconds}s"
  if "$exe" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$target-" "$work" "$src/corpus/$target" >"$log" 2>&1; then
    result="ok"
  else
    result="FAILED (see $log and $artifacts)"
    failed="$failed $target"
    tail -n 40 "$log" >&2
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -n 's/.*\(cov: [0-9]*\).*\(ft: [0-9]*\).*/\1 \2/p')
  summary="$summary
  $target: ${execs:-?} executions, ${cov:-no coverage line}: $result"
done <"$list"

echo "fuzz summary ($seconds s each):$summary"
[ -z "$failed" ] || { echo "fuzz: crashes in:$failed" >&2; exit 1; }
