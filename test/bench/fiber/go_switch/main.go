// go_switch — goroutine switch cost, the Go side of bench_switch.c.
//
//	GOMAXPROCS=1 go_switch [-n N] [-reps R]
//
// Run with GOMAXPROCS=1, as rill's fibers run on one thread:
//
//	yield_2    two goroutines calling runtime.Gosched() in turn: ns per
//	           Gosched (rill: rill_yield ping-pong);
//	handoff    two goroutines passing a token over unbuffered channels: ns
//	           per hand-off (rill: the wait-group ping-pong).
//
// Go's scheduler switches goroutine to goroutine directly, without a
// netpoll per switch, which is what rill's loop-mediated switch pays for.
// Medians of R runs, as "name_ns=value" lines after a readable one.
package main

import (
	"flag"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"
)

func yield2(n int) float64 {
	var wg sync.WaitGroup
	each := n / 2
	t0 := time.Now()
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / float64(2*each)
}

func handoff(n int) float64 {
	a, b := make(chan struct{}), make(chan struct{})
	rounds := n / 2
	done := make(chan struct{})
	t0 := time.Now()
	go func() {
		for i := 0; i < rounds; i++ {
			<-a
			b <- struct{}{}
		}
		close(done)
	}()
	for i := 0; i < rounds; i++ {
		a <- struct{}{}
		<-b
	}
	<-done
	return float64(time.Since(t0).Nanoseconds()) / float64(2*rounds)
}

// spawn: n/10 goroutines started 64 at a time, each running to its end
// before the next batch (Gosched): ns per start and exit.
func spawn(n int) float64 {
	total := n / 10
	done := 0
	t0 := time.Now()
	for i := 0; i < total; i++ {
		go func() { done++ }()
		if i%64 == 63 {
			runtime.Gosched()
		}
	}
	for done < total {
		runtime.Gosched()
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(total)
}

func main() {
	n := flag.Int("n", 10000000, "switches per run")
	reps := flag.Int("reps", 5, "runs; the median is printed")
	flag.Parse()
	fmt.Printf("# go_switch: %s, GOMAXPROCS=%d, N=%d per run, median of %d runs\n",
		runtime.Version(), runtime.GOMAXPROCS(0), *n, *reps)
	for _, b := range []struct {
		name, what string
		fn         func(int) float64
	}{
		{"yield_2", "2 goroutines, runtime.Gosched ping-pong: ns per Gosched", yield2},
		{"handoff", "2 goroutines, unbuffered channel ping-pong: ns per hand-off", handoff},
		{"spawn", "goroutines started 64 at a time, each ending: ns per start and exit", spawn},
	} {
		v := make([]float64, *reps)
		for i := range v {
			v[i] = b.fn(*n)
		}
		sort.Float64s(v)
		fmt.Printf("# %-72s %8.1f (min %.1f, max %.1f)\n", b.what, v[len(v)/2], v[0], v[len(v)-1])
		fmt.Printf("%s_ns=%.1f\n", b.name, v[len(v)/2])
	}
}
