// rw_client2 — sends each argument after a pause (seed 001, "conn.Read"
// cases 2 and 3). Default: "hi" (fewer bytes than the server's 10-byte
// buffer) then "abcdefghij12345" (more). Run against rw_server2. Mirrored by
// samples/seed/rw_client2.c.
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
	addr := flag.String("addr", "127.0.0.1:8892", "address to dial")
	short := flag.Bool("short", false, "shorten the sleeps")
	flag.Parse()
	data := flag.Args()
	if len(data) == 0 {
		data = []string{"hi", "abcdefghij12345"}
	}
	pause := 2 * time.Second
	if *short {
		pause = 100 * time.Millisecond
	}

	c, err := net.Dial("tcp", *addr)
	if err != nil {
		say("dial error: %v", err)
		os.Exit(1)
	}
	say("dial ok")
	for _, d := range data {
		time.Sleep(pause)
		if _, err := c.Write([]byte(d)); err != nil {
			say("write error: %v", err)
			break
		}
		say("write %d bytes: %s", len(d), d)
	}
	c.Close()
	say("close")
}
