// echo_go is the Go peer of coil's echo_server: a toupper echo server with one goroutine per
// connection, written the plain blocking way Go's netpoller is made for. Run it with
// GOMAXPROCS=1 to compare it with single-threaded coil.
//
//	echo_go PORT    (0: the kernel chooses; prints "listening on port N")
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

func serve(conn net.Conn) {
	defer conn.Close()
	buf := make([]byte, 16*1024)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			for i, c := range buf[:n] {
				if 'a' <= c && c <= 'z' {
					buf[i] = c - 'a' + 'A'
				}
			}
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: echo_go PORT")
		os.Exit(2)
	}
	port, err := strconv.Atoi(os.Args[1])
	if err != nil || port < 0 || port > 65535 {
		fmt.Fprintln(os.Stderr, "echo_go: bad port:", os.Args[1])
		os.Exit(2)
	}
	ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo_go:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on port %d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			fmt.Fprintln(os.Stderr, "echo_go: accept:", err)
			time.Sleep(100 * time.Millisecond) // e.g. out of fds: let connections close
			continue
		}
		go serve(conn)
	}
}
