#!/usr/bin/env bash
# The TLS benchmark's tables, in markdown, from its results file (what
# run_tls.sh writes: docs/bench/tls.tsv):
#
#   test/bench/echo/tls/tls_tables.sh [results.tsv]
#
# One row per server, one column per test (CONNSxBYTES ping-pong, full and
# resumed handshakes); in brackets the ratio to the raw OpenSSL + epoll
# server's value in the same test (the row keyed "raw"), when it ran. Then
# how busy the server's and the load generator's cores were (rate × CPU per
# operation): the one near 100% set the rate; neither, and the machine's
# other work did.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${1:-$HERE/../../../../docs/bench/tls.tsv}
[ -f "$RESULTS" ] || { echo "tls_tables: no results file $RESULTS" >&2; exit 1; }

awk -F'\t' '
function test_title(t,   p, b) {
  if (t == "full") return "full handshakes"
  if (t == "resumed") return "resumed handshakes"
  split(t, p, "x"); b = p[2] + 0
  return (b >= 1024 && b % 1024 == 0) ? sprintf("%s × %d KiB", p[1], b / 1024) : sprintf("%s × %d B", p[1], b)
}
function with_commas(s,   r) { # 12345 -> 12,345 (integers only)
  if (s !~ /^[0-9]+$/) return s
  r = ""
  while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
  return s r
}
function cell(v, b, fmt,   s) {
  if (v == "NaN" || v == "") return "—"
  s = sprintf(fmt, v)
  if (fmt == "%.0f") s = with_commas(s)
  if (b != "" && b != "NaN" && b > 0 && !is_base) s = s sprintf(" (%.2f)", v / b)
  return s
}
function busy(v, u) { return (v == "NaN" || u == "NaN" || v == "" || u == "") ? "—" : sprintf("%.0f%%", v * u / 1e4) }
function header(   c, line, rule) {
  line = "| server |"; rule = "|---|"
  for (c = 1; c <= ntests; c++) { line = line " " test_title(test[c]) " |"; rule = rule "---:|" }
  print line; print rule
}
function table(prefix, fmt, caption,   c, r, line) {
  print ""; print caption; print ""; header()
  for (r = 1; r <= nrows; r++) {
    is_base = (key[r] == "raw")
    line = "| " title[r] " |"
    for (c = 1; c <= ntests; c++) line = line " " cell(val[r, prefix ":" test[c]], base[prefix ":" test[c]], fmt) " |"
    print line
  }
}
/^# key/ {
  for (c = 1; c <= NF; c++) { col[c] = $c; if ($c ~ /^rate:/) test[++ntests] = substr($c, 6) }
  ncols = NF; next
}
/^#/ { meta[++nmeta] = substr($0, 3); next }
NF > 3 {
  nrows++; key[nrows] = $1; title[nrows] = $2
  for (c = 4; c <= NF; c++) { val[nrows, col[c]] = $c; if ($1 == "raw") base[col[c]] = $c }
}
END {
  for (m = 1; m <= nmeta; m++) print meta[m]
  table("cpu", "%.1f", "Server CPU per round trip or handshake, user + system, µs (lower is better; in brackets the ratio to raw OpenSSL + epoll):")
  table("rate", "%.0f", "Round trips or handshakes per second (higher is better; in brackets the ratio to raw OpenSSL + epoll):")
  print ""; print "Core busy, server / load generator (rate × CPU per operation). Both well under 100%: neither set the rate, other work on the machine did:"; print ""
  header()
  for (r = 1; r <= nrows; r++) {
    line = "| " title[r] " |"
    for (c = 1; c <= ntests; c++) line = line " " busy(val[r, "rate:" test[c]], val[r, "cpu:" test[c]]) " / " busy(val[r, "rate:" test[c]], val[r, "client_cpu:" test[c]]) " |"
    print line
  }
}' "$RESULTS"
