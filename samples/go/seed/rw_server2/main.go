// rw_server2 — reads into a 10-byte buffer until EOF (seed 001, "conn.Read"
// cases 2 and 3): fewer bytes than the buffer come back at once, more fill
// the buffer and the rest comes with the next read. Run with rw_client2.
// Mirrored by samples/seed/rw_server2.c.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
)

func say(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

func main() {
	addr := flag.String("addr", "127.0.0.1:8892", "address to listen on")
	flag.Bool("short", false, "shorten the sleeps (none here)")
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
	for {
		buf := make([]byte, 10)
		say("start to read from conn")
		n, err := c.Read(buf)
		if err != nil {
			say("conn read error: %v", err)
			return
		}
		say("read %d bytes, content is %s", n, buf[:n])
	}
}
