module wispnetbench

go 1.22
