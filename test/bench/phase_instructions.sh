#!/bin/sh
# Instructions per phase of bench_timers or bench_wheel, under callgrind:
# both call cpu_ms() at every phase boundary, and callgrind dumps its
# counts before each call, so dumps 2 to 5 are create, schedule, cancel
# and run. Counts do not depend on the machine's load (docs/timers.md).
#
#   test/bench/phase_instructions.sh <binary> [args...]
#   e.g. test/bench/phase_instructions.sh build-bench/test/bench/bench_timers --impl libev
set -eu
out=$(mktemp -d)
trap 'rm -r "$out"' EXIT
valgrind --tool=callgrind --compress-strings=no --dump-before='*cpu_ms*' \
  --callgrind-out-file="$out/cg" "$@" 2>/dev/null
for phase in 2:create 3:schedule 4:cancel 5:run; do
  n=${phase%%:*}
  printf '%s_instructions=%s ' "${phase#*:}" "$(sed -n 's/^summary: //p' "$out/cg.$n")"
done
echo
