// echo: the Go peer of examples/echo/echo.c for bench/net_run.py: a TCP echo
// server, one goroutine per connection, a read/write loop with a 4 KiB
// buffer. Go's defaults throughout (TCP_NODELAY on, GOMAXPROCS = cores).
//
//	echo [PORT [ADDRESS]]     (default 7000 127.0.0.1; port 0 picks one)
//
// The first line of output is `listening on ADDRESS:PORT`.
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

func handle(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	port, addr := "7000", "127.0.0.1"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	if len(os.Args) > 2 {
		addr = os.Args[2]
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "echo: cannot listen on %s:%s: %v\n", addr, port, err)
		os.Exit(1)
	}
	a := ln.Addr().(*net.TCPAddr)
	fmt.Printf("listening on %s:%s\n", a.IP, strconv.Itoa(a.Port))
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go handle(c)
	}
}
