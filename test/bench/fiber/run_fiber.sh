#!/usr/bin/env bash
# Fiber benchmarks: switch cost and memory per idle connection, rill's
# blocking facade beside Go (when `go` is installed), as a markdown table.
#
#   test/bench/fiber/run_fiber.sh <build dir>
#
# The build dir must come from a -DRILL_BUILD_BENCH=ON build (it holds
# test/bench/fiber/{bench_switch,bench_idle_rss}). The Go programs
# (go_switch, go_idle_rss) are built into a temporary directory.
# Knobs (environment): FIBER_N (switches per run, 10000000), FIBER_REPS (5:
# repeats of the switch runs, and rounds of the idle-memory runs, which
# interleave rill callbacks, rill fibers and Go and report medians),
# FIBER_CONNS (idle connections, 10000).
set -euo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 <build dir>" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
N=${FIBER_N:-10000000}
REPS=${FIBER_REPS:-5}
CONNS=${FIBER_CONNS:-10000}
SWITCH=$BUILD/test/bench/fiber/bench_switch
IDLE=$BUILD/test/bench/fiber/bench_idle_rss
for exe in "$SWITCH" "$IDLE"; do
  if [ ! -x "$exe" ]; then
    echo "run_fiber: $exe is missing: build with -DRILL_BUILD_BENCH=ON" >&2
    exit 1
  fi
done

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

HAVE_GO=0
if command -v go >/dev/null; then
  if (cd "$HERE/go_switch" && go build -o "$TMP/go_switch" .) >&2 &&
     (cd "$HERE/go_idle_rss" && go build -o "$TMP/go_idle_rss" .) >&2; then
    HAVE_GO=1
  else
    echo "run_fiber: building the Go programs failed: rill only" >&2
  fi
else
  echo "run_fiber: go not installed: rill only" >&2
fi

val() { sed -n "s/^$1=//p" "$2"; }

echo "# $(uname -sr), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //')" >&2
"$SWITCH" --n "$N" --reps "$REPS" | tee "$TMP/switch" | grep '^#' >&2
if [ $HAVE_GO = 1 ]; then
  GOMAXPROCS=1 "$TMP/go_switch" -n "$N" -reps "$REPS" | tee "$TMP/goswitch" | grep '^#' >&2
else
  : >"$TMP/goswitch"
fi
# Idle memory: rill callbacks, rill fibers and Go interleaved, REPS times
# each, so a drift of the machine over the run hits all of them alike.
: >"$TMP/idlecb"
: >"$TMP/idle4096"
: >"$TMP/idle64"
: >"$TMP/idlepriv4096"
: >"$TMP/idlepriv64"
: >"$TMP/goidle4096"
: >"$TMP/goidle64"
for rep in $(seq "$REPS"); do
  echo "# idle memory, round $rep of $REPS" >&2
  "$IDLE" --conns "$CONNS" --callbacks | tee -a "$TMP/idlecb" | grep '^#' >&2
  "$IDLE" --conns "$CONNS" --buf 4096 | tee -a "$TMP/idle4096" | grep '^#' >&2
  "$IDLE" --conns "$CONNS" --buf 4096 --private-stack | tee -a "$TMP/idlepriv4096" | grep '^#' >&2
  if [ $HAVE_GO = 1 ]; then
    "$TMP/go_idle_rss" -conns "$CONNS" -buf 4096 | tee -a "$TMP/goidle4096" | grep '^#' >&2
  fi
  "$IDLE" --conns "$CONNS" --buf 64 | tee -a "$TMP/idle64" | grep '^#' >&2
  "$IDLE" --conns "$CONNS" --buf 64 --private-stack | tee -a "$TMP/idlepriv64" | grep '^#' >&2
  if [ $HAVE_GO = 1 ]; then
    "$TMP/go_idle_rss" -conns "$CONNS" -buf 64 | tee -a "$TMP/goidle64" | grep '^#' >&2
  fi
done
g() { local v; v=$(val "$1" "$2" | head -n 1); echo "${v:-n/a}"; }
# The median of every value of $1 in $2 (the lower middle one of an even count).
med() {
  val "$1" "$2" | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "n/a" }'
}

echo
echo "| measure | rill facade | Go (GOMAXPROCS=1) |"
echo "|---|---:|---:|"
echo "| yield ping-pong, 2 fibers/goroutines (ns per yield) | $(g yield_2_ns "$TMP/switch") | $(g yield_2_ns "$TMP/goswitch") |"
echo "| hand-off ping-pong: rill wait group / Go channel (ns per hand-off) | $(g waitgroup_ns "$TMP/switch") | $(g handoff_ns "$TMP/goswitch") |"
echo "| loop iteration alone: 0 ms timer re-armed, no fiber (ns) | $(g timer_loop_ns "$TMP/switch") | - |"
echo "| yield with 1000 fibers (ns per yield, ~ switch pair + ready queue) | $(g yield_1000_ns "$TMP/switch") | - |"
echo "| start and exit, 64 at a time: rill_go / go statement (ns) | $(g spawn_ns "$TMP/switch") | $(g spawn_ns "$TMP/goswitch") |"
echo
echo "| idle memory per connection (bytes, $CONNS conns, medians of $REPS) | rill callbacks | rill fibers | rill fibers, private stack | Go |"
echo "|---|---:|---:|---:|---:|"
echo "| RSS, 4096-byte read buffer (fiber: on its stack; Go: on the heap) | $(med rss_per_conn_bytes "$TMP/idlecb") | $(med rss_per_conn_bytes "$TMP/idle4096") | $(med rss_per_conn_bytes "$TMP/idlepriv4096") | $(med rss_per_conn_bytes "$TMP/goidle4096") |"
echo "| RSS, 64-byte read buffer | $(med rss_per_conn_bytes "$TMP/idlecb") | $(med rss_per_conn_bytes "$TMP/idle64") | $(med rss_per_conn_bytes "$TMP/idlepriv64") | $(med rss_per_conn_bytes "$TMP/goidle64") |"
echo "| page tables (VmPTE), 4096-byte buffer | $(med pte_per_conn_bytes "$TMP/idlecb") | $(med pte_per_conn_bytes "$TMP/idle4096") | $(med pte_per_conn_bytes "$TMP/idlepriv4096") | $(med pte_per_conn_bytes "$TMP/goidle4096") |"
echo
echo "A callback-API connection holds no buffer (the base's read buffer is shared), so one"
echo "callbacks column serves both buffer sizes."
echo "The raw context switch (lib/fiber/switch_*.S) has no public hook, so it is not timed alone;"
echo "a yield is a switch pair plus the ready queue, and the scheduler runs up to 64 such switches"
echo "between two polls of the loop (the 0 ms kick timer), whose cost the loop-iteration row shows."
