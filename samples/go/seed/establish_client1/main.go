// establish_client1 — dialing a port nobody listens on (seed 001, "conn
// establish" case 1): the dial fails at once with "connection refused".
// Mirrored by samples/seed/establish_client1.c (rill's blocking facade).
//
//	establish_client1 [--addr HOST:PORT] [--short]
package main

import (
	"flag"
	"fmt"
	"net"
	"time"
)

func say(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

func main() {
	addr := flag.String("addr", "127.0.0.1:8881", "address to dial")
	flag.Bool("short", false, "shorten the sleeps (none here)")
	flag.Parse()

	t0 := time.Now()
	say("begin dial...")
	conn, err := net.Dial("tcp", *addr)
	if err != nil {
		say("dial error: %v", err)
		// The kernel answers a SYN to a closed port with RST: no waiting.
		if time.Since(t0) < 100*time.Millisecond {
			say("the dial failed at once (under 100 ms)")
		}
		return
	}
	defer conn.Close()
	say("dial ok")
}
