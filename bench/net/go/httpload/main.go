// httpload: the HTTP/1.1 load generator bench/http_run.py drives every HTTP
// server with (wisp's web example and Go's net/http alike).
//
//	httpload -addr HOST:PORT -path /16k -body-len 16384 -conns N -duration D [-warmup W]
//
// It opens N keep-alive connections (at most -dial-parallel dials in flight)
// and makes one checked request on each, so every connection is established
// and served before anything is measured. Then every connection makes
// closed-loop GET requests as fast as it can, one at a time (no pipelining):
// requests whose response completes in [start+warmup, start+warmup+duration)
// count. Prints `RESULT conns=N requests=R rps=X p50_us=.. p99_us=.. max_us=..`.
//
// Requests are written by hand and responses read with a small parser (a
// status line, headers, a Content-Length body), far cheaper than net/http's
// client, so that the generator takes as little of the machine's CPU from
// the server as it can. A response that is not `200`, has no
// Content-Length, a body of another length than -body-len, or closes the
// connection prints `ERROR ...` on stderr and exits 1.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

var (
	addr     = flag.String("addr", "127.0.0.1:8080", "server address")
	path     = flag.String("path", "/", "request path")
	bodyLen  = flag.Int("body-len", -1, "expected body length (-1: any)")
	nconns   = flag.Int("conns", 200, "concurrent connections")
	duration = flag.Duration("duration", 10*time.Second, "measured time")
	warmup   = flag.Duration("warmup", time.Second, "unmeasured time before it")
	dialPar  = flag.Int("dial-parallel", 64, "dials in flight at once")
	ioTO     = flag.Duration("io-timeout", 30*time.Second, "per request")
)

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "ERROR "+format+"\n", a...)
	os.Exit(1)
}

type conn struct {
	c   net.Conn
	r   *bufio.Reader
	req []byte
	buf []byte
}

// do makes one request and reads its whole response.
func (k *conn) do() error {
	k.c.SetDeadline(time.Now().Add(*ioTO))
	if _, err := k.c.Write(k.req); err != nil {
		return fmt.Errorf("write: %v", err)
	}
	line, err := k.r.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("reading the status line: %v", err)
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", line)
	}
	length := -1
	for {
		h, err := k.r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("reading headers: %v", err)
		}
		if len(h) <= 2 {
			break
		}
		if len(h) > 16 && bytes.EqualFold(h[:15], []byte("content-length:")) {
			length, err = strconv.Atoi(string(bytes.TrimSpace(h[15:])))
			if err != nil {
				return fmt.Errorf("bad Content-Length %q", h)
			}
		}
		if bytes.EqualFold(bytes.TrimSpace(h), []byte("connection: close")) {
			return fmt.Errorf("the server closes the connection")
		}
	}
	if length < 0 {
		return fmt.Errorf("no Content-Length")
	}
	if *bodyLen >= 0 && length != *bodyLen {
		return fmt.Errorf("body of %d bytes, want %d", length, *bodyLen)
	}
	if cap(k.buf) < length {
		k.buf = make([]byte, length)
	}
	if _, err := io.ReadFull(k.r, k.buf[:length]); err != nil {
		return fmt.Errorf("reading the body: %v", err)
	}
	return nil
}

type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func dialAll(n int) []*conn {
	conns := make([]*conn, n)
	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *addr + "\r\nUser-Agent: httpload\r\n\r\n")
	sem := make(chan struct{}, *dialPar)
	var wg sync.WaitGroup
	var firstErr firstError
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			var err error
			for try := 0; try < 5; try++ {
				var c net.Conn
				c, err = net.DialTimeout("tcp", *addr, 10*time.Second)
				if err == nil {
					k := &conn{c: c, r: bufio.NewReaderSize(c, 32*1024), req: req}
					if err = k.do(); err == nil {
						conns[i] = k
						return
					}
					c.Close()
					break // a connection that was served wrongly is an error
				}
				time.Sleep(time.Duration(try+1) * 100 * time.Millisecond)
			}
			firstErr.set(fmt.Errorf("conn %d: %v", i, err))
		}(i)
	}
	wg.Wait()
	if e := firstErr.get(); e != nil {
		fail("connecting %d connections to %s: %v", n, *addr, e)
	}
	return conns
}

func main() {
	flag.Parse()
	t0 := time.Now()
	conns := dialAll(*nconns)
	setup := time.Since(t0)

	start := time.Now()
	mStart := start.Add(*warmup)
	mEnd := mStart.Add(*duration)
	lats := make([][]int64, len(conns))
	var wg sync.WaitGroup
	var firstErr firstError
	for i, k := range conns {
		wg.Add(1)
		go func(i int, k *conn) {
			defer wg.Done()
			mine := make([]int64, 0, 4096)
			for {
				a := time.Now()
				if !a.Before(mEnd) {
					break
				}
				if err := k.do(); err != nil {
					firstErr.set(fmt.Errorf("conn %d: %v", i, err))
					return
				}
				b := time.Now()
				if !b.Before(mStart) && b.Before(mEnd) {
					mine = append(mine, int64(b.Sub(a)))
				}
			}
			lats[i] = mine
		}(i, k)
	}
	wg.Wait()
	if e := firstErr.get(); e != nil {
		fail("%v", e)
	}
	var all []int64
	for _, l := range lats {
		all = append(all, l...)
	}
	if len(all) == 0 {
		fail("no request completed in the measured window")
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	pct := func(p float64) float64 {
		return float64(all[int(p*float64(len(all)-1))]) / 1e3
	}
	for _, k := range conns {
		k.c.Close()
	}
	fmt.Printf("RESULT conns=%d requests=%d rps=%.0f p50_us=%.1f p99_us=%.1f max_us=%.1f setup_ms=%d\n",
		len(conns), len(all), float64(len(all))/duration.Seconds(), pct(0.50), pct(0.99),
		float64(all[len(all)-1])/1e3, setup.Milliseconds())
}
