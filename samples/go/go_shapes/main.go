// go_shapes — the Go program samples/go_shapes.c mirrors: a worker pool,
// fan-in with select, a timeout, a mutex, and cancellation with a context.
// Both print the same lines.
package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

func workerPool() {
	jobs := make(chan int, 4)
	results := make(chan int, 4)
	var wg sync.WaitGroup
	wg.Add(3)
	for i := 0; i < 3; i++ {
		go func() {
			defer wg.Done()
			for job := range jobs {
				results <- job * job
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()
	sum := 0
	for job := 1; job <= 10; job++ {
		select {
		case jobs <- job:
		case r := <-results:
			sum += r
			job--
		}
	}
	close(jobs)
	for r := range results {
		sum += r
	}
	fmt.Printf("worker pool: 3 workers, 10 jobs, sum of squares %d\n", sum)
}

func fanIn() {
	produce := func(name byte) chan string {
		out := make(chan string)
		go func() {
			for i := 0; i < 3; i++ {
				out <- fmt.Sprintf("%c%d", name, i)
				time.Sleep(time.Millisecond)
			}
			close(out)
		}()
		return out
	}
	in := [2]chan string{produce('a'), produce('b')}
	next := [2]int{}
	total, inOrder := 0, true
	for in[0] != nil || in[1] != nil {
		var m string
		var ok bool
		which := 0
		select {
		case m, ok = <-in[0]:
		case m, ok = <-in[1]:
			which = 1
		}
		if !ok {
			in[which] = nil
			continue
		}
		want := fmt.Sprintf("%c%d", "ab"[which], next[which])
		next[which]++
		inOrder = inOrder && m == want
		total++
	}
	word := map[bool]string{true: "in order", false: "out of order"}[inOrder]
	fmt.Printf("fan-in: %d messages from 2 producers, a0 a1 a2 %s, b0 b1 b2 %s\n", total, word, word)
}

func timeout() {
	reply := make(chan string, 1)
	go func() { time.Sleep(200 * time.Millisecond); reply <- "pong" }()
	select {
	case <-reply:
	case <-time.After(50 * time.Millisecond):
		fmt.Println("timeout: no reply within 50 ms")
	}
	fmt.Printf("late reply: %s\n", <-reply)
}

func mutex() {
	var mu sync.Mutex
	var wg sync.WaitGroup
	value := 0
	wg.Add(4)
	for i := 0; i < 4; i++ {
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				mu.Lock()
				v := value
				value = v + 1
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("mutex: counter %d\n", value)
}

func withContext() {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() {
		for {
			select {
			case <-time.After(10 * time.Millisecond):
				continue
			case <-ctx.Done():
			}
			stopped <- ctx.Err()
			return
		}
	}()
	time.Sleep(35 * time.Millisecond)
	cancel()
	fmt.Printf("context: worker stopped: %v\n", <-stopped)

	deadline, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	<-deadline.Done()
	fmt.Printf("context: deadline: %v\n", deadline.Err())
}

func main() {
	workerPool()
	fanIn()
	timeout()
	mutex()
	withContext()
}
