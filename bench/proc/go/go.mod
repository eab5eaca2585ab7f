module wisp/bench/procbench

go 1.19
