// rw_client4 — waits a little, sends 65536 bytes, closes. Run against
// rw_server4 (seed 001, "conn.Read" case 5). Mirrored by
// samples/seed/rw_client4.c.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

func say(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

func main() {
	addr := flag.String("addr", "127.0.0.1:8894", "address to dial")
	short := flag.Bool("short", false, "shorten the sleeps")
	flag.Parse()

	c, err := net.Dial("tcp", *addr)
	if err != nil {
		say("dial error: %v", err)
		os.Exit(1)
	}
	say("dial ok")
	// After rw_server4's first read has timed out (its deadline is 1/2 of this).
	if *short {
		time.Sleep(200 * time.Millisecond)
	} else {
		time.Sleep(2 * time.Second)
	}
	data := make([]byte, 65536)
	if _, err := c.Write(data); err != nil {
		say("write error: %v", err)
	} else {
		say("write %d bytes", len(data))
	}
	c.Close()
	say("close")
}
