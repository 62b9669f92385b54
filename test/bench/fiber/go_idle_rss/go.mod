module rill/bench/idle_rss

go 1.19
