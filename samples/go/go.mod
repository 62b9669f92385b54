module rill/samples

go 1.19
