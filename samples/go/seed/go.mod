module rill/seed

go 1.19
