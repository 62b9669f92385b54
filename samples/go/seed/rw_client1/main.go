// rw_client1 — connects, says nothing for a while, then sends "hello" and
// closes. Run against rw_server1 (seed 001, "conn.Read" case 1). Mirrored
// by samples/seed/rw_client1.c.
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
	addr := flag.String("addr", "127.0.0.1:8891", "address to dial")
	short := flag.Bool("short", false, "shorten the sleeps")
	flag.Parse()

	c, err := net.Dial("tcp", *addr)
	if err != nil {
		say("dial error: %v", err)
		os.Exit(1)
	}
	say("dial ok")
	if *short { // rw_server1 expects at least half of this
		time.Sleep(200 * time.Millisecond)
	} else {
		time.Sleep(2 * time.Second)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		say("write error: %v", err)
	} else {
		say("write 5 bytes: hello")
	}
	c.Close()
	say("close")
}
