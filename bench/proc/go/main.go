// procbench -- the process workloads of bench/proc_run.py, Go side.
//
// Same semantics as bench/proc/erlang/procbench.erl and bench/proc/c/*.c;
// see the docstring of bench/proc_run.py. A process is a goroutine, a
// mailbox an unbuffered channel (the idiomatic Go rendering of each
// workload). Every workload times itself and prints one line
//
//	RESULT key=value ...
//
// so that start-up is not counted. Usage: procbench WORKLOAD ARGS...
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: procbench spawn N | idle N | pingpong N | ring P M | skynet LEAVES | sleepers N SECS")
	}
	var n []int
	for _, a := range os.Args[2:] {
		v, err := strconv.Atoi(a)
		if err != nil {
			fail("bad number %q", a)
		}
		n = append(n, v)
	}
	need := map[string]int{"spawn": 1, "idle": 1, "pingpong": 1, "ring": 2, "skynet": 1, "sleepers": 2}
	if k, ok := need[os.Args[1]]; !ok || len(n) != k {
		fail("unknown workload or wrong arguments: %v", os.Args[1:])
	}
	switch os.Args[1] {
	case "spawn":
		spawnBench(n[0])
	case "idle":
		idleBench(n[0])
	case "pingpong":
		pingpongBench(n[0])
	case "ring":
		ringBench(n[0], n[1])
	case "skynet":
		skynetBench(n[0])
	case "sleepers":
		sleepersBench(n[0], n[1])
	}
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "procbench: "+format+"\n", a...)
	os.Exit(2)
}

func us(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / 1000 / float64(n) }

// 1. spawn+exit: start N goroutines that end at once; wait for all.
func spawnBench(n int) {
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	fmt.Printf("RESULT spawn_us=%.4f n=%d\n", us(time.Since(t0), n), n)
}

// 2. idle processes: N goroutines blocked on a receive; print READY and
// sleep until the harness has read our RSS and kills us.
func idleBench(n int) {
	var up sync.WaitGroup
	stop := make(chan struct{})
	up.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			up.Done()
			<-stop
		}()
	}
	up.Wait()
	fmt.Printf("READY n=%d\n", n)
	for {
		time.Sleep(time.Hour)
	}
}

// 3. ping-pong: N round trips of a small message between two goroutines.
func pingpongBench(n int) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for x := range ping {
			pong <- x
		}
	}()
	t0 := time.Now()
	for i := n; i > 0; i-- {
		ping <- i
		if <-pong != i {
			fail("pingpong: wrong reply")
		}
	}
	d := time.Since(t0)
	close(ping)
	fmt.Printf("RESULT pingpong_us=%.4f n=%d\n", us(d, n), n)
}

// 4. ring: p goroutines, each forwarding a token to the next; m hops in all.
func ringBench(p, m int) {
	chans := make([]chan int, p)
	for i := range chans {
		chans[i] = make(chan int)
	}
	done := make(chan int)
	for i := 0; i < p; i++ {
		go func(i int, in, next chan int) {
			for k := range in {
				if k == 0 {
					done <- i
				} else {
					next <- k - 1
				}
			}
		}(i, chans[i], chans[(i+1)%p])
	}
	t0 := time.Now()
	chans[0] <- m
	last := <-done
	d := time.Since(t0)
	for _, c := range chans {
		close(c)
	}
	// The token starts at node 0 with m, so it reaches 0 at node m % p.
	fmt.Printf("RESULT ring_hop_us=%.4f procs=%d hops=%d last=%d\n", us(d, m), p, m, last)
}

// 5. skynet: a tree of goroutines, 10 children each, `leaves` leaves that
// send their number up; every node sums its children's.
func skynet(c chan int, num, size int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	sub := size / 10
	for i := 0; i < 10; i++ {
		go skynet(rc, num+i*sub, sub)
	}
	sum := 0
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	c <- sum
}

func skynetBench(leaves int) {
	c := make(chan int)
	t0 := time.Now()
	go skynet(c, 0, leaves)
	sum := <-c
	fmt.Printf("RESULT skynet_s=%.4f leaves=%d sum=%d\n", time.Since(t0).Seconds(), leaves, sum)
}

// 6. sleepers: n goroutines each looping time.Sleep(100 ms) for secs
// seconds, counting wake-ups. READY when all are up (the harness reads our
// CPU time), RESULT with the sum of their counts (it reads it again); then
// sleep until killed.
func sleepersBench(n, secs int) {
	var up sync.WaitGroup
	start := make(chan struct{})
	counts := make(chan int, n)
	park := make(chan struct{})
	up.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			up.Done()
			<-start
			deadline := time.Now().Add(time.Duration(secs) * time.Second)
			c := 0
			for time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				c++
			}
			counts <- c
			<-park
		}()
	}
	up.Wait()
	fmt.Printf("READY n=%d\n", n)
	close(start)
	total := 0
	for i := 0; i < n; i++ {
		total += <-counts
	}
	fmt.Printf("RESULT wakeups=%d n=%d secs=%d\n", total, n, secs)
	for {
		time.Sleep(time.Hour)
	}
}
