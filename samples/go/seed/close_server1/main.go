// close_server1 — reading and writing a connection the peer has closed
// (seed 001, "closing"): the read gets EOF, yet a write succeeds (the bytes
// land in this side's kernel buffer); the peer answers them with a reset,
// and the next write fails with "broken pipe". Run with close_client1.
// Mirrored by samples/seed/close_server1.c.
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
	addr := flag.String("addr", "127.0.0.1:8901", "address to listen on")
	short := flag.Bool("short", false, "shorten the sleeps")
	flag.Parse()

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		say("listen error: %v", err)
		os.Exit(1)
	}
	say("listen ok")
	c, err := l.Accept()
	l.Close()
	if err != nil {
		say("accept error: %v", err)
		os.Exit(1)
	}
	say("accept a new connection")
	defer c.Close()

	buf := make([]byte, 10)
	say("start to read from conn")
	if n, err := c.Read(buf); err != nil {
		say("conn read error: %v", err)
	} else {
		say("read %d bytes", n)
	}
	for i := 0; i < 2; i++ {
		if i > 0 { // the peer's RST comes back meanwhile
			if *short {
				time.Sleep(100 * time.Millisecond)
			} else {
				time.Sleep(time.Second)
			}
		}
		if n, err := c.Write(buf); err != nil {
			say("conn write error: %v", err)
		} else {
			say("write %d bytes", n)
		}
	}
}
