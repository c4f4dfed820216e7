module coil/echo_go

go 1.19
