module rill/bench/switch

go 1.19
