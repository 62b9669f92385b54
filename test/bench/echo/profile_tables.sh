#!/usr/bin/env bash
# Where each server's CPU per round trip (or handshake) goes, by function,
# from the perf samples that run_echo.sh's ECHO_PROFILE or tls/run_tls.sh's
# TLS_PROFILE recorded: for every shape or test, a table of the functions
# whose cost differs most from the first server's (the first server
# named), in µs per operation.
#
#   test/bench/echo/profile_tables.sh <profile dir> <runs file>
#
# A function's share of a run's samples times that run's CPU per operation
# (the runs file's user + system time from /proc) is what it cost per
# operation; repeats are averaged. [k] marks the kernel's functions, [.]
# user space (rill, OpenSSL and libc alike).
#
# Knobs: PROFILE_TOP (20 rows a shape).
set -euo pipefail

if [ $# -ne 2 ] || [ ! -d "$1" ] || [ ! -f "$2" ]; then
  echo "usage: $0 <profile dir> <runs file>" >&2
  exit 2
fi
DIR=$1
RUNS=$2
TOP=${PROFILE_TOP:-20}

# One line per function and run: shape, server, function, µs per round trip.
# perf names a run's file server.shape.rep.data.
for data in "$DIR"/*.data; do
  [ -e "$data" ] || { echo "profile_tables: no perf data in $DIR" >&2; exit 1; }
  run=$(basename "$data" .data)
  rep=${run##*.}
  rest=${run%.*}
  shape=${rest##*.}
  server=${rest%.*}
  cpu=$(awk -F'\t' -v r="$rep" -v s="$shape" -v v="$server" \
          '$1 == r && $2 == s && $3 == v { print $5 }' "$RUNS")
  [ -n "$cpu" ] && [ "$cpu" != NaN ] || continue
  perf report -i "$data" --no-children --sort sym --stdio -g none -n -t '|' 2>/dev/null |
    awk -F'|' -v cpu="$cpu" -v shape="$shape" -v server="$server" -v rep="$rep" '
      /^#/ || NF < 3 { next }
      { n = $2 + 0; f = $3; sub(/^ +/, "", f); sub(/ +$/, "", f); samples[f] += n; total += n }
      END { for (f in samples) printf "%s\t%s\t%s\t%s\t%.6f\n", shape, server, rep, f, samples[f] / total * cpu }'
done >"$DIR/functions.tsv"

order=$(awk -F'\t' '!/^#/ && !seen[$3]++ { printf "%s ", $3 }' "$RUNS")
for shape in $(awk -F'\t' '!/^#/ && !seen[$2]++ { print $2 }' "$RUNS"); do
  echo
  echo "Server CPU per operation by function, $shape, µs (perf cpu-clock samples; [k] kernel, [.] user):"
  echo
  awk -F'\t' -v shape="$shape" -v order="$order" -v top="$TOP" '
    $1 != shape { next }
    { cost[$2 SUBSEP $4] += $5; reps[$2 SUBSEP $3] = 1; fn[$4] = 1
      side = substr($4, 1, 3) == "[k]" ? "kernel" : "user"; part[$2 SUBSEP side] += $5 }
    END {
      n = split(order, servers, " ")
      for (k in reps) { split(k, p, SUBSEP); nreps[p[1]]++ }
      m = 0
      for (i = 1; i <= n; i++) if (nreps[servers[i]]) used[++m] = servers[i]
      if (m == 0) exit
      base = used[1]
      head = "| function |"; rule = "|---|"
      for (i = 1; i <= m; i++) { head = head " " used[i] " |"; rule = rule "---:|" }
      if (m > 1) { head = head " " used[2] " − " base " |"; rule = rule "---:|" }
      print head; print rule
      for (f in fn) {
        for (i = 1; i <= m; i++) v[f, i] = cost[used[i] SUBSEP f] / nreps[used[i]]
        d[f] = m > 1 ? v[f, 2] - v[f, 1] : v[f, 1]
      }
      for (r = 0; r < top; r++) {
        best = ""
        for (f in d) if (!(f in shown) && (best == "" || (d[f] < 0 ? -d[f] : d[f]) > (d[best] < 0 ? -d[best] : d[best]))) best = f
        if (best == "") break
        shown[best] = 1
        line = "| `" best "` |"
        for (i = 1; i <= m; i++) line = line sprintf(" %.3f |", v[best, i])
        if (m > 1) line = line sprintf(" %+.3f |", d[best])
        print line
      }
      for (s = 1; s <= 3; s++) {
        side = s == 1 ? "user" : s == 2 ? "kernel" : "total"
        line = "| **" side " (all)** |"
        for (i = 1; i <= m; i++) {
          t[i] = side == "total" ? (part[used[i] SUBSEP "user"] + part[used[i] SUBSEP "kernel"]) / nreps[used[i]] \
                                 : part[used[i] SUBSEP side] / nreps[used[i]]
          line = line sprintf(" %.3f |", t[i])
        }
        if (m > 1) line = line sprintf(" %+.3f |", t[2] - t[1])
        print line
      }
    }' "$DIR/functions.tsv"
done
