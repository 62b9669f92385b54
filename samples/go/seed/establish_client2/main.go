// establish_client2 — dialing a server whose listen backlog is full (seed
// 001, "conn establish" case 2). Run against establish_server2, which has a
// backlog of 4 and accepts slowly. Mirrored by samples/seed/establish_client2.c.
//
// Serial dials complete at once while the kernel can queue them; then a
// dial waits: the server's kernel drops the SYN and the dial completes only
// once the server accepted and a SYN retransmission (after 1 s on Linux)
// finds room. A dial with a timeout ends with "i/o timeout" instead.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

const maxConns = 1000

func say(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

func main() {
	addr := flag.String("addr", "127.0.0.1:8882", "address to dial")
	short := flag.Bool("short", false, "shorten the sleeps")
	flag.Parse()
	timeout := 2 * time.Second
	if *short {
		timeout = 200 * time.Millisecond
	}

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Phase 1: dial with a timeout until one times out. The successes are
	// summed up in one line: their number is the server's queue length.
	atOnce := 0
	for len(conns) < maxConns {
		c, err := net.DialTimeout("tcp", *addr, timeout)
		if err != nil {
			say("1-%d: connect to server ok (at once)", atOnce)
			say("%d: dial error: %v", len(conns)+1, err)
			break
		}
		conns = append(conns, c)
		atOnce++
		// A pause between dials, so the count does not depend on how fast
		// the server process gets to run, only on how much it queues.
		time.Sleep(2 * time.Millisecond)
	}
	status := 0
	if len(conns) == maxConns {
		say("1-%d: connect to server ok (no dial ever waited)", len(conns))
		status = 1
	}
	// Phase 2: dial without a timeout: it waits until the server accepted
	// (and the SYN was sent again). One dial only: after that, whether the
	// next one waits depends on how the accepts fall between retransmits.
	for i := 0; i < 1 && len(conns) < maxConns; i++ {
		t0 := time.Now()
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			say("%d: dial error: %v", len(conns)+2, err)
			status = 1
			break
		}
		conns = append(conns, c)
		how := "at once"
		if time.Since(t0) >= 100*time.Millisecond {
			how = "after waiting for an accept"
		}
		// +1: the dial that timed out had a number too.
		say("%d: connect to server ok (%s)", len(conns)+1, how)
	}
	if status != 0 {
		for _, c := range conns {
			c.Close()
		}
		os.Exit(status)
	}
}
