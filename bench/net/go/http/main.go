// http: the Go peer of sdk/rust/examples/src/bin/web.rs for bench/http_run.py:
// net/http's server with its defaults (a goroutine per connection,
// keep-alive, GOMAXPROCS = cores), the same two routes and bodies:
//
//	GET /      Hello, world!\n             (text/plain; charset=utf-8)
//	GET /16k   16 KiB of the same text as web.rs's
//
//	http [PORT [ADDRESS]]     (default 8080 127.0.0.1; port 0 picks one)
//
// The first line of output is `listening on http://ADDRESS:PORT`.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
)

func sixteenK() []byte {
	b := make([]byte, 16384)
	for i := range b {
		if i%64 == 63 {
			b[i] = '\n'
		} else {
			b[i] = 'a' + byte(i%26)
		}
	}
	return b
}

func main() {
	port, addr := 8080, "127.0.0.1"
	if len(os.Args) > 1 {
		port, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		addr = os.Args[2]
	}
	hello, big := []byte("Hello, world!\n"), sixteenK()
	bigLen := strconv.Itoa(len(big))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(hello)
	})
	mux.HandleFunc("GET /16k", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", bigLen) // else net/http chunks a body this big
		w.Write(big)
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	os.Stdout.Sync()
	if err := http.Serve(ln, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
