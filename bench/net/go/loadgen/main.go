// loadgen: the one load generator bench/net_run.py drives every echo server
// with (wisp, Go, Erlang alike).
//
//	loadgen -mode load -addr HOST:PORT -conns N -duration D [-warmup W] [-size B]
//	loadgen -mode idle -addr HOST:PORT -conns N
//	loadgen -mode connect -addr HOST:PORT -conns N -duration D [-warmup W]
//
// -tls -ca FILE [-servername NAME] [-resume]: every connection is a TLS
// client (crypto/tls) that verifies the server against FILE (name
// "localhost" by default). Key exchange X25519 only, whatever the server
// supports: Go's default also offers X25519MLKEM768, which OpenSSL 3.0
// does not have, and a Go server picking it would do more work per
// handshake than the others. -resume keeps a session cache per
// connection slot (resumed handshakes, when the server issues tickets).
//
// The load and idle modes first open N connections (at most -dial-parallel dials in
// flight, retried on failure) and do one checked echo round trip on each, so
// every connection is established and served before anything is measured.
//
// load: every connection then does closed-loop request/response round trips
// (write -size bytes, read them back, compare) as fast as it can. Round trips
// that complete in the window [start+warmup, start+warmup+duration) count.
// Prints `RESULT conns=N requests=R rps=X p50_us=.. p99_us=.. max_us=..`.
//
// idle: prints `READY n=N` and holds the connections, idle, until stdin
// closes.
//
// connect: no connections are kept; N workers each loop over: dial, (TLS
// handshake,) one checked round trip, close. Connections completed in
// the window count: `RESULT conns=N requests=R rps=X p50_us=..` as for
// load, where a "request" is a whole connection.
//
// Any echo that differs from what was sent, short reads, resets or timeouts
// print `ERROR ...` on stderr and exit 1.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

var (
	mode     = flag.String("mode", "load", "load or idle")
	addr     = flag.String("addr", "127.0.0.1:7000", "server address")
	nconns   = flag.Int("conns", 1000, "concurrent connections")
	duration = flag.Duration("duration", 10*time.Second, "measured time (load)")
	warmup   = flag.Duration("warmup", time.Second, "unmeasured time before it (load)")
	size     = flag.Int("size", 64, "bytes per request")
	dialPar  = flag.Int("dial-parallel", 64, "dials in flight at once")
	ioTO     = flag.Duration("io-timeout", 30*time.Second, "per round trip")
	useTLS   = flag.Bool("tls", false, "TLS clients")
	caFile   = flag.String("ca", "", "CA file the server's certificate is verified against (-tls)")
	sni      = flag.String("servername", "localhost", "the name verified (-tls)")
	resume   = flag.Bool("resume", false, "resume TLS sessions (connect mode, -tls)")
)

// tlsConfig is the clients' TLS configuration (nil without -tls).
var tlsConfig *tls.Config

func setupTLS() {
	if !*useTLS {
		return
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fail("-ca: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail("-ca %s: no PEM certificate", *caFile)
	}
	tlsConfig = &tls.Config{RootCAs: pool, ServerName: *sni,
		CurvePreferences: []tls.CurveID{tls.X25519}}
}

// resumed counts the TLS handshakes that resumed a session (-resume).
var resumed atomic.Int64

// dial opens one connection (with its TLS handshake done, for -tls);
// cache: the slot's session cache (nil: none).
func dial(cache tls.ClientSessionCache) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", *addr, 10*time.Second)
	if err != nil || tlsConfig == nil {
		return c, err
	}
	cfg := tlsConfig
	if cache != nil {
		cfg = tlsConfig.Clone()
		cfg.ClientSessionCache = cache
	}
	tc := tls.Client(c, cfg)
	tc.SetDeadline(time.Now().Add(*ioTO))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake: %v", err)
	}
	if tc.ConnectionState().DidResume {
		resumed.Add(1)
	}
	return tc, nil
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "ERROR "+format+"\n", a...)
	os.Exit(1)
}

// fill writes a payload unique to (conn, seq) into b.
func fill(b []byte, conn int, seq uint64) {
	binary.LittleEndian.PutUint32(b[0:], uint32(conn))
	binary.LittleEndian.PutUint64(b[4:], seq)
	x := uint32(conn)*2654435761 ^ uint32(seq)*40503
	for i := 12; i < len(b); i++ {
		x = x*1103515245 + 12345
		b[i] = byte(x >> 16)
	}
}

// roundTrip sends one request on c and checks the echo.
func roundTrip(c net.Conn, id int, seq uint64, req, resp []byte) error {
	fill(req, id, seq)
	c.SetDeadline(time.Now().Add(*ioTO))
	if _, err := c.Write(req); err != nil {
		return fmt.Errorf("conn %d: write: %v", id, err)
	}
	if _, err := io.ReadFull(c, resp); err != nil {
		return fmt.Errorf("conn %d: read: %v", id, err)
	}
	if !bytes.Equal(req, resp) {
		return fmt.Errorf("conn %d: wrong echo data at request %d", id, seq)
	}
	return nil
}

// firstError keeps the first error reported by any goroutine.
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

func dialAll(n int) []net.Conn {
	conns := make([]net.Conn, n)
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
				c, err = dial(nil)
				if err == nil {
					conns[i] = c
					req, resp := make([]byte, *size), make([]byte, *size)
					if err = roundTrip(c, i, 0, req, resp); err == nil {
						return
					}
					c.Close()
					conns[i] = nil
					break // a connection that was served wrongly is an error
				}
				time.Sleep(time.Duration(try+1) * 100 * time.Millisecond)
			}
			firstErr.set(err)
		}(i)
	}
	wg.Wait()
	if e := firstErr.get(); e != nil {
		fail("connecting %d connections to %s: %v", n, *addr, e)
	}
	return conns
}

// report prints the RESULT line from every worker's latencies (ns) of
// the measured window.
func report(lats [][]int64, setup time.Duration) {
	var all []int64
	for _, l := range lats {
		all = append(all, l...)
	}
	if len(all) == 0 {
		fail("no round trip completed in the measured window")
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	pct := func(p float64) float64 {
		i := int(p * float64(len(all)-1))
		return float64(all[i]) / 1e3
	}
	// per-connection fairness: the slowest connection's share of the mean
	minC, maxC := len(all), 0
	for _, l := range lats {
		if len(l) < minC {
			minC = len(l)
		}
		if len(l) > maxC {
			maxC = len(l)
		}
	}
	fmt.Printf("RESULT conns=%d requests=%d rps=%.0f p50_us=%.1f p99_us=%.1f max_us=%.1f "+
		"min_conn=%d max_conn=%d setup_ms=%d resumed=%d\n",
		len(lats), len(all), float64(len(all))/duration.Seconds(), pct(0.50), pct(0.99),
		float64(all[len(all)-1])/1e3, minC, maxC, setup.Milliseconds(), resumed.Load())
}

// measure runs one closed loop per worker (work(i, seq)) until the
// window ends and reports the calls completed in it.
func measure(n int, setup time.Duration, work func(i int, seq uint64) error) {
	start := time.Now()
	mStart := start.Add(*warmup)
	mEnd := mStart.Add(*duration)
	lats := make([][]int64, n)
	var wg sync.WaitGroup
	var firstErr firstError
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			mine := make([]int64, 0, 4096)
			for seq := uint64(1); ; seq++ {
				a := time.Now()
				if !a.Before(mEnd) {
					break
				}
				if err := work(i, seq); err != nil {
					firstErr.set(err)
					return
				}
				b := time.Now()
				if !b.Before(mStart) && b.Before(mEnd) {
					mine = append(mine, int64(b.Sub(a)))
				}
			}
			lats[i] = mine
		}(i)
	}
	wg.Wait()
	if e := firstErr.get(); e != nil {
		fail("%v", e)
	}
	report(lats, setup)
}

// connectMode: a new connection per request.
func connectMode() {
	type slot struct {
		req, resp []byte
		cache     tls.ClientSessionCache
	}
	slots := make([]slot, *nconns)
	for i := range slots {
		slots[i] = slot{req: make([]byte, *size), resp: make([]byte, *size)}
		if *resume {
			slots[i].cache = tls.NewLRUClientSessionCache(1)
		}
	}
	measure(*nconns, 0, func(i int, seq uint64) error {
		c, err := dial(slots[i].cache)
		if err != nil {
			return fmt.Errorf("conn %d: %v", i, err)
		}
		err = roundTrip(c, i, seq, slots[i].req, slots[i].resp)
		c.Close()
		return err
	})
}

func main() {
	flag.Parse()
	if *size < 12 {
		fail("-size must be at least 12")
	}
	setupTLS()
	if *mode == "connect" {
		connectMode()
		return
	}
	t0 := time.Now()
	conns := dialAll(*nconns)
	setup := time.Since(t0)

	if *mode == "idle" {
		fmt.Printf("READY n=%d setup_ms=%d\n", len(conns), setup.Milliseconds())
		io.Copy(io.Discard, os.Stdin)
		return
	}
	if *mode != "load" {
		fail("unknown -mode %q", *mode)
	}
	bufs := make([][2][]byte, len(conns))
	for i := range bufs {
		bufs[i] = [2][]byte{make([]byte, *size), make([]byte, *size)}
	}
	measure(len(conns), setup, func(i int, seq uint64) error {
		return roundTrip(conns[i], i, seq, bufs[i][0], bufs[i][1])
	})
	for _, c := range conns {
		c.Close()
	}
}
