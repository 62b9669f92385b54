#!/usr/bin/env bash
# The echo benchmark's chart: server CPU per round trip, one panel per shape,
# one bar per server, coloured rill / peer libraries / hand-written limits,
# drawn by gnuplot from the results file run_echo.sh writes.
#
#   test/bench/echo/plot_echo.sh [results.tsv [chart.png]]
#
# Defaults: docs/bench/echo.tsv and docs/bench/echo.png.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
RESULTS=${1:-$ROOT/docs/bench/echo.tsv}
CHART=${2:-$ROOT/docs/bench/echo.png}
[ -f "$RESULTS" ] || { echo "plot_echo: no results file $RESULTS" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot_echo: gnuplot is not installed (gnuplot-nox)" >&2; exit 1; }

# The cpu:<shape> columns (1-based, as gnuplot counts) and their titles.
header=$(grep -m1 '^# key' "$RESULTS")
columns=()
titles=()
i=0
while IFS= read -r name; do
  i=$((i + 1))
  case "$name" in
    cpu:*)
      shape=${name#cpu:}
      columns+=("$i")
      titles+=("$(awk -v s="$shape" 'BEGIN { split(s, p, "x"); b = p[2] + 0
        if (b >= 1024 && b % 1024 == 0) printf "%s connection%s × %d KiB\n", p[1], p[1] == 1 ? "" : "s", b / 1024
        else printf "%s connection%s × %d B\n", p[1], p[1] == 1 ? "" : "s", b }')")
      ;;
  esac
done < <(tr '\t' '\n' <<<"$header")
[ ${#columns[@]} -gt 0 ] || { echo "plot_echo: no cpu:<shape> column in $RESULTS" >&2; exit 1; }
panels=${#columns[@]}
layout_cols=$((panels > 1 ? 2 : 1))
layout_rows=$(((panels + 1) / 2))
nservers=$(grep -vc '^#' "$RESULTS" || true)
when=$(sed -n '2s/^# //p' "$RESULTS" | cut -d, -f1)

# Room above the panels for the colour key, under the title; room under
# each row for the slanted server names.
height=$((430 * layout_rows + 90))
top=$(awk -v h=$height 'BEGIN { printf "%.3f", 1 - 85 / h }')
key_y=$(awk -v h=$height 'BEGIN { printf "%.3f", 1 - 40 / h }')
bottom=$(awk -v h=$height 'BEGIN { printf "%.3f", 110 / h }')
vspace=$(awk -v h=$height 'BEGIN { printf "%.3f", 150 / h }')
mkdir -p "$(dirname "$CHART")"
{
  cat <<EOF
set terminal pngcairo noenhanced size 1500,$height font "sans,10"
set output "$CHART"
set datafile separator "\t"
set datafile missing "NaN"
set style fill solid 0.85 border -1
set boxwidth 0.7
set grid ytics lc rgb "#dddddd"
set xtics rotate by 35 right nomirror
set ytics nomirror
set yrange [0:*]
set xrange [-0.6:$((nservers > 0 ? nservers : 1)) - 0.4]
set offsets 0, 0, graph 0.12, 0
set ylabel "server CPU µs per round trip"
colour(family) = family eq "rill" ? 0x2b6cb0 : family eq "limit" ? 0x7a7a7a : 0xdd8833
set key horizontal center top at screen 0.5, screen $key_y
set multiplot layout $layout_rows,$layout_cols title "Echo: server CPU (user + system) per round trip, lower is better ($when; medians)" font "sans,12" \\
  margins 0.06, 0.98, $bottom, $top spacing 0.07, $vspace
EOF
  for p in $(seq 0 $((panels - 1))); do
    c=${columns[$p]}
    key="keyentry with boxes lc rgb 0x2b6cb0 title 'rill', keyentry with boxes lc rgb 0xdd8833 title 'peer libraries', keyentry with boxes lc rgb 0x7a7a7a title 'hand-written limits'"
    [ "$p" -eq 0 ] || key="keyentry notitle"
    cat <<EOF
set title "${titles[$p]}"
plot "$RESULTS" using 0:(column($c)):(colour(strcol(3))):xtic(2) with boxes lc rgb variable notitle, \\
     "" using 0:(column($c)):(sprintf("%.3g", column($c))) with labels offset 0,0.6 font "sans,9" notitle, \\
     $key
EOF
  done
  echo "unset multiplot"
} | gnuplot
