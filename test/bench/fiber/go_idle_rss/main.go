// go_idle_rss — memory per idle connection held by a goroutine, the Go side
// of test/bench/fiber/bench_idle_rss.c (same procedure, same output).
//
//	go_idle_rss [-conns N] [-buf BYTES]
//
// The server (this process) accepts N connections (default 10000), one
// goroutine each, parked in conn.Read with a BYTES buffer (default 4096;
// it escapes to the heap, as in any Go server). A child process (this
// program again, with -client) makes the connections and holds them. VmRSS
// is read before the first connection and once every goroutine is parked
// (after a GC, so that garbage does not count); the difference over N is
// the user-space memory per connection: the goroutine's stack, its buffer,
// the netFD and poll descriptor. Kernel socket memory is not in RSS; page
// tables (VmPTE) are reported beside it.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// statusKB reads a field of /proc/self/status ("VmRSS", "VmPTE") in kB.
func statusKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), field+":") {
			v, _ := strconv.ParseInt(strings.Fields(s.Text())[1], 10, 64)
			return v
		}
	}
	return -1
}

func raiseNofile(n uint64) {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur < n {
		rl.Cur = n
		if rl.Cur > rl.Max {
			rl.Cur = rl.Max
		}
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}

// client: N connections, "connected" on stdout, hold them until stdin closes.
func client(addr string, n int) {
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "go_idle_rss client:", err)
			os.Exit(1)
		}
		conns = append(conns, c)
	}
	fmt.Println("connected")
	buf := make([]byte, 1)
	for {
		if _, err := os.Stdin.Read(buf); err != nil {
			break
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

func main() {
	n := flag.Int("conns", 10000, "idle connections")
	bufSize := flag.Int("buf", 4096, "read buffer per connection")
	clientOf := flag.String("client", "", "internal: be the client of this address")
	flag.Parse()
	raiseNofile(uint64(*n) + 64)
	if *clientOf != "" {
		client(*clientOf, *n)
		return
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_idle_rss:", err)
		os.Exit(1)
	}
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	before := statusKB("VmRSS")
	pteBefore := statusKB("VmPTE")

	child := exec.Command(os.Args[0], "-client", l.Addr().String(), "-conns", strconv.Itoa(*n))
	childIn, _ := child.StdinPipe()
	childOut, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "go_idle_rss:", err)
		os.Exit(1)
	}

	var parked int64
	var done sync.WaitGroup
	for i := 0; i < *n; i++ {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "go_idle_rss: accept:", err)
			os.Exit(1)
		}
		done.Add(1)
		go func(c net.Conn) {
			defer done.Done()
			defer c.Close()
			buf := make([]byte, *bufSize)
			atomic.AddInt64(&parked, 1)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}(c)
	}
	line, _ := bufio.NewReader(childOut).ReadString('\n')
	if strings.TrimSpace(line) != "connected" {
		fmt.Fprintln(os.Stderr, "go_idle_rss: the client failed")
		os.Exit(1)
	}
	for atomic.LoadInt64(&parked) < int64(*n) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // as long as bench_idle_rss waits
	runtime.GC()
	after := statusKB("VmRSS")
	pteAfter := statusKB("VmPTE")
	l.Close()
	childIn.Close()
	done.Wait()
	child.Wait()

	per := float64(after-before) * 1024 / float64(*n)
	pte := float64(pteAfter-pteBefore) * 1024 / float64(*n)
	fmt.Printf("# Go %s (GOMAXPROCS=%d): %d idle connections, a goroutine each parked in conn.Read (%d-byte buffer): VmRSS %d kB -> %d kB, %.0f bytes per connection; page tables %.0f bytes\n",
		runtime.Version(), runtime.GOMAXPROCS(0), *n, *bufSize, before, after, per, pte)
	fmt.Printf("rss_per_conn_bytes=%.0f\n", per)
	fmt.Printf("pte_per_conn_bytes=%.0f\n", pte)
}
