module rill/bench/tlsecho

go 1.19
