module coil/idle_go

go 1.19
