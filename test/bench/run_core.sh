#!/usr/bin/env bash
# Word splitting of sample lists and "N variant inflight" triples is intended.
# shellcheck disable=SC2086
#
# Runs the core benchmarks (rill against libev) and prints a markdown table.
#
#   test/bench/run_core.sh <build dir>
#
# Builds nothing: the binaries must already be in <build dir>/test/bench
# (configure with -DRILL_BUILD_BENCH=ON). Every configuration runs rill and
# libev alternately, REPS times each, pinned to one core with taskset when
# it is available; the table shows medians. Progress goes to stderr, the
# results to stdout only. Exits 1 if any run failed its own checks.
#
# Environment: BENCH_REPS (default 5), BENCH_EVENTS (callbacks per watchers
# run, default 1000000), BENCH_TIMERS (default 1000000), BENCH_CPU (the core
# to pin to, default 1, or 0 on a single-core machine).
set -u

build=${1:?usage: run_core.sh <build dir>}
dir=$build/test/bench
reps=${BENCH_REPS:-5}
events=${BENCH_EVENTS:-1000000}
timers=${BENCH_TIMERS:-1000000}

for b in bench_timers bench_watchers; do
  if [ ! -x "$dir/$b" ]; then
    echo "run_core.sh: $dir/$b not found (configure with -DRILL_BUILD_BENCH=ON and build)" >&2
    exit 2
  fi
done

pin=()
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
cpu=${BENCH_CPU:-$([ "$ncpu" -gt 1 ] && echo 1 || echo 0)}
if command -v taskset >/dev/null 2>&1 && taskset -c "$cpu" true 2>/dev/null; then
  pin=(taskset -c "$cpu")
fi

failed=0
declare -A val  # "<config>|<impl>|<key>" -> space-separated samples
declare -A skip # "<config>" -> reason

# field KEY LINE: the value of KEY=... in a result line.
field() {
  local kv
  for kv in $2; do
    if [ "${kv%%=*}" = "$1" ]; then
      printf '%s' "${kv#*=}"
      return
    fi
  done
}

# run CONFIG "KEYS" BINARY ARGS...: one run of each implementation, rill first.
run() {
  local config=$1 keys=$2 bin=$3 impl line rc k
  shift 3
  for impl in rill libev; do
    line=$("${pin[@]}" "$dir/$bin" --impl "$impl" "$@")
    rc=$?
    line=$(printf '%s\n' "$line" | grep '^bench=' | tail -n 1)
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
      echo "run_core.sh: FAILED (status $rc): $bin --impl $impl $*" >&2
      failed=1
      skip[$config]=FAILED
      continue
    fi
    if [ -n "$(field skipped "$line")" ]; then
      skip[$config]="skipped ($(field skipped "$line"))"
      continue
    fi
    for k in $keys; do
      val[$config|$impl|$k]+="$(field "$k" "$line") "
    done
  done
}

median() {
  printf '%s\n' $1 | sort -g | awk '{ a[NR] = $1 }
    END { if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2];
          else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# row CONFIG KEY "benchmark label" "variant label" PRINTF-FORMAT
row() {
  local config=$1 key=$2 label=$3 variant=$4 fmt=$5 r l
  if [ -n "${skip[$config]:-}" ]; then
    printf '| %s | %s | %s | %s | - |\n' "$label" "$variant" "${skip[$config]}" "${skip[$config]}"
    return
  fi
  r=$(median "${val[$config|rill|$key]:-}")
  l=$(median "${val[$config|libev|$key]:-}")
  awk -v label="$label" -v variant="$variant" -v r="$r" -v l="$l" -v fmt="$fmt" 'BEGIN {
    ratio = (l + 0 > 0) ? sprintf("%.2f", r / l) : "-"
    printf "| %s | %s | " fmt " | " fmt " | %s |\n", label, variant, r, l, ratio }'
}

timer_keys="create_ms schedule_ms cancel_ms run_cpu_ms total_cpu_ms peak_rss_kb wakeups"
watcher_keys="us_per_event us_per_iter"
watcher_configs=()
for n in 100 1000 10000; do
  for variant in plain timeouts; do
    watcher_configs+=("$n $variant 100")
  done
done
latency_events=$((events / 4))
watcher_configs+=("1000 plain 1" "10000 timeouts 1")

echo "run_core.sh: $reps repetitions, pinned: ${pin[*]:-no}" >&2
for ((i = 1; i <= reps; i++)); do
  echo "run_core.sh: round $i/$reps: timers" >&2
  run timers "$timer_keys" bench_timers --count "$timers"
  for c in "${watcher_configs[@]}"; do
    set -- $c
    m=$events
    [ "$3" = 1 ] && m=$latency_events
    flags=()
    [ "$2" = timeouts ] && flags=(--timeouts)
    echo "run_core.sh: round $i/$reps: watchers N=$1 $2 inflight=$3" >&2
    run "w $c" "$watcher_keys" bench_watchers --n "$1" --active 100 --inflight "$3" \
      --events "$m" "${flags[@]}"
  done
done

backend=$("$dir/bench_timers" --impl rill --count 2 2>/dev/null | tr ' ' '\n' | sed -n 's/^backend=//p')
echo "Core benchmarks: rill (backend ${backend:-?}) vs libev (epoll); median of $reps runs each," \
  "alternating; pinned: ${pin[*]:-no}; $(uname -sm), $ncpu CPUs."
echo "Timers: $timers one-shot timers, random timeouts in [0, 1000) ms, every second one" \
  "cancelled. Watchers: 100 active pipes in N watched descriptors, each callback" \
  "stop+start (+ restarts a 10 s timer with 'timeouts'); inflight 100: $events callbacks," \
  "inflight 1: $latency_events. Lower is better everywhere."
echo
echo "| benchmark | N / variant | rill | libev | rill/libev |"
echo "|---|---|---:|---:|---:|"
tv="$timers timers"
row timers create_ms "timers: create (CPU ms)" "$tv" "%.1f"
row timers schedule_ms "timers: schedule (CPU ms)" "$tv" "%.1f"
row timers cancel_ms "timers: cancel half (CPU ms)" "$tv" "%.1f"
row timers run_cpu_ms "timers: run until fired (CPU ms)" "$tv" "%.1f"
row timers total_cpu_ms "timers: total (CPU ms)" "$tv" "%.1f"
row timers peak_rss_kb "timers: peak RSS (KiB)" "$tv" "%.0f"
row timers wakeups "timers: loop wake-ups while firing" "$tv" "%.0f"
for c in "${watcher_configs[@]}"; do
  set -- $c
  v="N=$1 $2, inflight $3"
  row "w $c" us_per_event "watchers: CPU µs per event" "$v" "%.3f"
  row "w $c" us_per_iter "watchers: CPU µs per iteration" "$v" "%.2f"
done
exit $failed
