# What the echo benchmarks (run_echo.sh, tls/run_tls.sh, tls/perop.sh)
# share, sourced by each: starting and stopping one server at a time,
# pinning, the choice of servers, medians, and the machine's description.
# A script sets BENCH_NAME (the prefix of its messages) and TMP (its
# temporary directory) first, and declares EXE and TITLE (server ->
# executable, title) and ALL_SERVERS before it selects servers.
# shellcheck shell=bash disable=SC2034 # what it sets is for the script

SERVER_PID=""

# Kills a process we started (TERM, then KILL) and reaps it.
kill_pid() { # pid
  [ -n "$1" ] || return 0
  if kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" 2>/dev/null || true
    sleep 0.2
    kill -KILL "$1" 2>/dev/null || true
  fi
  wait "$1" 2>/dev/null || true
}

# Every process the script started is killed, whatever happens, and TMP
# removed (with the keys in it). `extra` names more pid variables.
bench_traps() { # [pid variable...]
  BENCH_PID_VARS=("$@")
  trap bench_cleanup EXIT
  trap 'bench_cleanup; exit 130' INT
  trap 'bench_cleanup; exit 143' TERM
}
bench_cleanup() {
  local var
  for var in "${BENCH_PID_VARS[@]}"; do
    kill_pid "${!var:-}"
    printf -v "$var" ''
  done
  kill_pid "$SERVER_PID"
  SERVER_PID=""
  rm -rf "$TMP"
}

# CONNSxBYTES shapes only; exits 2 naming `knob` otherwise.
bench_check_shapes() { # knob shape...
  local knob=$1 shape
  shift
  for shape in "$@"; do
    if ! [[ $shape =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]]; then
      echo "$BENCH_NAME: bad shape '$shape' in $knob: CONNSxBYTES, as 100x64" >&2
      exit 2
    fi
  done
}

# PIN_SERVER and PIN_CLIENT (taskset commands, or nothing) and PINNING,
# which says how.
bench_pin() { # server_cpu client_cpu
  PIN_SERVER=()
  PIN_CLIENT=()
  PINNING="unpinned"
  if command -v taskset >/dev/null && [ "$(nproc --all)" -gt "$2" ]; then
    PIN_SERVER=(taskset -c "$1")
    PIN_CLIENT=(taskset -c "$2")
    PINNING="server on CPU $1, load generator on CPU $2"
  else
    echo "$BENCH_NAME: taskset or a second CPU missing: running unpinned" >&2
  fi
}

# Runs `command...` in the background with stdout to `out`, as SERVER_PID,
# and waits up to 5 s until it listens on 127.0.0.1:port. 1 when it exited
# first or never listened.
bench_start() { # name port out command...
  local name=$1 port=$2 out=$3
  shift 3
  "$@" >"$out" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null || true
      SERVER_PID=""
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "$BENCH_NAME: $name server does not listen on port $port" >&2
  return 1
}

stop_server() { # name
  local pid=$SERVER_PID
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$BENCH_NAME: $1 server ignored SIGTERM for 2 s: killed" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  SERVER_PID=""
}

# The directory a profiling knob names (made, and absolute), or nothing
# when the knob is unset; exits when perf is missing.
bench_profile_dir() { # knob
  local dir=${!1:-}
  [ -n "$dir" ] || return 0
  command -v perf >/dev/null || { echo "$BENCH_NAME: $1 needs perf (linux-perf)" >&2; exit 1; }
  mkdir -p "$dir" && (cd "$dir" && pwd)
}

# perf samples SERVER_PID (cpu-clock, call graphs; the kernel's functions
# too when run as root or with perf_event_paranoid <= 1) into `data` until
# profile_stop. profile_tables.sh reads the files.
PERF_PID=""
profile_start() { # data
  perf record -q -e cpu-clock -F 4000 -g -p "$SERVER_PID" -o "$1" >/dev/null 2>"$TMP/perf.err" &
  PERF_PID=$!
  sleep 0.3 # attached before the load starts
}
profile_stop() {
  [ -n "$PERF_PID" ] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || cat "$TMP/perf.err" >&2
  PERF_PID=""
}

# Builds the Go server in `dir` into `exe`, when go is installed.
bench_build_go() { # dir exe
  if command -v go >/dev/null; then
    (cd "$1" && go build -o "$2" .) >&2 ||
      echo "$BENCH_NAME: building the Go server failed: skipping it" >&2
  else
    echo "$BENCH_NAME: go not installed: skipping the Go server" >&2
  fi
}

# SERVERS: those of `wanted` that are built and pass `check` (a function
# taking the server's name, which says why it fails and adds a note);
# NOTES: why the others are left out. Exits 2 on an unknown name.
bench_select_servers() { # check wanted...
  local check=$1 server
  shift
  SERVERS=()
  NOTES=()
  for server in "$@"; do
    if [ -z "${EXE[$server]:-}" ]; then
      echo "$BENCH_NAME: unknown server '$server' (${ALL_SERVERS[*]})" >&2
      exit 2
    elif [ ! -x "${EXE[$server]}" ]; then
      echo "$BENCH_NAME: ${EXE[$server]} not built: skipping ${TITLE[$server]}" >&2
      NOTES+=("${TITLE[$server]}: not built (${EXE[$server]##*/})")
    elif "$check" "$server"; then
      SERVERS+=("$server")
    fi
  done
}

# The date, the kernel, the CPUs and PINNING, for the results' header.
bench_machine() {
  echo "$(date -u '+%F %H:%M UTC'), $(uname -sr), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //')), $PINNING"
}

# Runs `measure rep test server port` for every repeat and test on every
# server, the servers taking turns in an order that rotates from test to
# test, so a burst of noise on the machine falls on different servers;
# PORT moves on for every run.
bench_rotate() { # measure reps test...
  local measure=$1 reps=$2 rep test k turn=0 nservers=${#SERVERS[@]}
  shift 2
  for rep in $(seq 1 "$reps"); do
    for test in "$@"; do
      turn=$((turn + 1))
      for k in $(seq 0 $((nservers - 1))); do
        PORT=$((PORT + 1))
        "$measure" "$rep" "$test" "${SERVERS[$(((k + turn - 1) % nservers))]}" "$PORT"
      done
    done
  done
}

median() { # [printf format] < numbers: their median, "n/a" if none
  sort -g | awk -v fmt="${1:-%.0f}" '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) printf fmt "\n", v[(NR + 1) / 2]; else printf fmt "\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

values() { # array-name key...: one value a line
  local -n arr=$1
  shift
  tr ' ' '\n' <<<"${arr["$*"]:-}" | grep -v '^$' || true
}

# The tables (`tables` script on the results file), the notes, and where
# the results are.
bench_report() { # tables results runs
  bash "$1" "$2"
  if [ ${#NOTES[@]} -gt 0 ]; then
    echo
    for note in "${NOTES[@]}"; do echo "- $note"; done
  fi
  echo
  echo "Results: $2 (every run: $3)"
}
