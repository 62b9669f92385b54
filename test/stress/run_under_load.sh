#!/bin/sh
# Runs a command N times while stress-ng keeps every core busy, and says
# which runs passed. A test that asserts behaviour (not speed) must pass
# here exactly as it does on an idle machine; CI machines are shared, so
# this is how we find the tests that only pass when nothing else runs.
#
#   test/stress/run_under_load.sh [-n RUNS] [-c CPU_WORKERS] [-l LOGDIR] -- COMMAND [ARGS...]
#
# Example: the plain suite twice under load, from a build directory:
#   ../test/stress/run_under_load.sh -n 2 -- ctest --output-on-failure -j2
#
# Each run's output goes to LOGDIR/run-K.log (default: a new directory
# under /tmp). The exit status is 0 only if every run passed. stress-ng is
# stopped when the script ends, however it ends.
set -u

runs=5
cpus=2
logdir=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n) runs="$2"; shift 2 ;;
    -c) cpus="$2"; shift 2 ;;
    -l) logdir="$2"; shift 2 ;;
    --) shift; break ;;
    -*) echo "usage: $0 [-n RUNS] [-c CPU_WORKERS] [-l LOGDIR] -- COMMAND [ARGS...]" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ $# -eq 0 ]; then
  echo "usage: $0 [-n RUNS] [-c CPU_WORKERS] [-l LOGDIR] -- COMMAND [ARGS...]" >&2
  exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
sh "$here/../../scripts/install-deps.sh" stress || exit 1

[ -n "$logdir" ] || logdir=$(mktemp -d /tmp/rill-under-load.XXXXXX)
mkdir -p "$logdir"

# stress-ng's own timeout is a backstop: even if this script is killed
# with SIGKILL, the load ends by itself within a day.
stress-ng --cpu "$cpus" --timeout 86400 --quiet &
stress_pid=$!
stop_stress() {
  if kill -0 "$stress_pid" 2>/dev/null; then
    kill -TERM "$stress_pid" 2>/dev/null
    wait "$stress_pid" 2>/dev/null
  fi
}
trap stop_stress EXIT
trap 'exit 130' INT TERM HUP
# Let the workers start before the first run, so every run is under load.
sleep 1

failed=0
k=1
while [ "$k" -le "$runs" ]; do
  start=$(date +%s)
  if "$@" >"$logdir/run-$k.log" 2>&1; then
    result=PASS
  else
    result="FAIL (exit $?)"
    failed=$((failed + 1))
  fi
  echo "run $k/$runs: $result after $(($(date +%s) - start)) s, log $logdir/run-$k.log"
  k=$((k + 1))
done

stop_stress
echo "under load (stress-ng --cpu $cpus): $((runs - failed))/$runs runs passed"
[ "$failed" -eq 0 ]
