// tlsecho: the Go peer of examples/tls-echo/tls_echo.c for bench/net_run.py:
// a TLS echo server with crypto/tls, written the way Go's documentation
// does it: tls.Listen, one goroutine per connection, a read/write loop
// with a 4 KiB buffer. Go's defaults throughout (TLS 1.2-1.3, session
// tickets on, TCP_NODELAY on, GOMAXPROCS = cores).
//
//	tlsecho PORT ADDRESS CERT KEY     (port 0 picks one)
//
// The first line of output is `listening on ADDRESS:PORT`.
package main

import (
	"crypto/tls"
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
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: tlsecho PORT ADDRESS CERT KEY")
		os.Exit(2)
	}
	cert, err := tls.LoadX509KeyPair(os.Args[3], os.Args[4])
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlsecho: %v\n", err)
		os.Exit(1)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := tls.Listen("tcp", net.JoinHostPort(os.Args[2], os.Args[1]), cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlsecho: cannot listen: %v\n", err)
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
