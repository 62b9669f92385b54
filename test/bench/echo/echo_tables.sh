#!/usr/bin/env bash
# The echo benchmark's tables, in markdown, from its results file (what
# run_echo.sh writes: docs/bench/echo.tsv):
#
#   test/bench/echo/echo_tables.sh [results.tsv]
#
# One row per server, one column per shape; in brackets the ratio to raw
# epoll's value in the same shape (the row keyed "raw"), when it ran. With
# the single runs beside the results (echo-runs.tsv), also the spread of the
# CPU per round trip over the repeats.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${1:-$HERE/../../../docs/bench/echo.tsv}
[ -f "$RESULTS" ] || { echo "echo_tables: no results file $RESULTS" >&2; exit 1; }
RUNS=$(dirname "$RESULTS")/$(basename "$RESULTS" .tsv)-runs.tsv
[ -f "$RUNS" ] || RUNS=/dev/null

awk -F'\t' '
function shape_title(s,   p, b) {
  split(s, p, "x"); b = p[2] + 0
  return (b >= 1024 && b % 1024 == 0) ? sprintf("%s × %d KiB", p[1], b / 1024) : sprintf("%s × %d B", p[1], b)
}
function cell(v, base, fmt, s) {
  if (v == "NaN" || v == "") return "—"
  s = sprintf(fmt, v)
  if (base != "" && base != "NaN" && base > 0 && !is_base) s = s sprintf(" (%.2f)", v / base)
  return s
}
function with_commas(s,   r) { # 12345 -> 12,345 (integers only)
  if (s !~ /^[0-9]+$/) return s
  r = ""
  while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
  return s r
}
function table(prefix, fmt, caption,   c, i, line, rule, r) {
  print ""
  print caption
  print ""
  line = "| server |"; rule = "|---|"
  for (c = 4; c <= ncols; c++) if (index(col[c], prefix ":") == 1) {
    line = line " " shape_title(substr(col[c], length(prefix) + 2)) " |"; rule = rule "---:|"
  }
  print line; print rule
  for (r = 1; r <= nrows; r++) {
    line = "| " title[r] " |"
    is_base = (key[r] == "raw")
    for (c = 4; c <= ncols; c++) if (index(col[c], prefix ":") == 1) {
      v = val[r, c]
      s = cell(v, base[c], fmt)
      if (prefix == "rps") { split(s, part, " "); s = with_commas(part[1]) (part[2] != "" ? " " part[2] : "") }
      line = line " " s " |"
    }
    print line
  }
}
FILENAME != ARGV[1] {
  if ($0 !~ /^#/ && $5 != "NaN") {
    k = $3 SUBSEP $2
    if (!(k in lo) || $5 + 0 < lo[k]) lo[k] = $5 + 0
    if (!(k in hi) || $5 + 0 > hi[k]) hi[k] = $5 + 0
    nruns++
  }
  next
}
/^# key/ { ncols = NF; for (c = 1; c <= NF; c++) col[c] = $c; next }
/^#/ { meta[++nmeta] = substr($0, 3); next }
NF > 3 {
  nrows++; key[nrows] = $1; title[nrows] = $2
  for (c = 4; c <= NF; c++) { val[nrows, c] = $c; if ($1 == "raw") base[c] = $c }
}
END {
  for (m = 1; m <= nmeta; m++) print meta[m]
  table("cpu", "%.2f", "Server CPU per round trip, user + system, µs (lower is better; in brackets the ratio to raw epoll):")
  table("rps", "%.0f", "Round trips per second (higher is better; in brackets the ratio to raw epoll):")
  if (nruns) {
    print ""
    print "Spread of the server CPU per round trip over the repeats, µs (lowest–highest):"
    print ""
    line = "| server |"; rule = "|---|"
    for (c = 4; c <= ncols; c++) if (index(col[c], "cpu:") == 1) { line = line " " shape_title(substr(col[c], 5)) " |"; rule = rule "---:|" }
    print line; print rule
    for (r = 1; r <= nrows; r++) {
      line = "| " title[r] " |"
      for (c = 4; c <= ncols; c++) if (index(col[c], "cpu:") == 1) {
        k = key[r] SUBSEP substr(col[c], 5)
        line = line " " ((k in lo) ? sprintf("%.1f–%.1f", lo[k], hi[k]) : "—") " |"
      }
      print line
    }
  }
  if (col[ncols] == "idle_bytes") {
    print ""
    print "Server memory per idle connection, bytes of RSS:"
    print ""
    print "| server | bytes |"
    print "|---|---:|"
    for (r = 1; r <= nrows; r++)
      print "| " title[r] " | " (val[r, ncols] == "NaN" ? "—" : with_commas(val[r, ncols])) " |"
  }
}' "$RESULTS" "$RUNS"
