// close_client1 — reading and writing a connection this side has closed
// (seed 001, "closing"): "use of closed network connection", for both. Run
// against close_server1. Mirrored by samples/seed/close_client1.c.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
)

func say(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

func main() {
	addr := flag.String("addr", "127.0.0.1:8901", "address to dial")
	flag.Bool("short", false, "shorten the sleeps (none here)")
	flag.Parse()

	say("begin dial...")
	c, err := net.Dial("tcp", *addr)
	if err != nil {
		say("dial error: %v", err)
		os.Exit(1)
	}
	say("dial ok")
	c.Close()
	say("close ok")

	buf := make([]byte, 32)
	if n, err := c.Read(buf); err != nil {
		say("read error: %v", err)
	} else {
		say("read %d bytes", n)
	}
	if n, err := c.Write(buf); err != nil {
		say("write error: %v", err)
	} else {
		say("write %d bytes", n)
	}
}
