// rw_client3 — sends "hello" (or its argument) and closes at once. Run
// against rw_server3 (seed 001, "conn.Read" case 4). Mirrored by
// samples/seed/rw_client3.c.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
)

func say(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

func main() {
	addr := flag.String("addr", "127.0.0.1:8893", "address to dial")
	flag.Bool("short", false, "shorten the sleeps (none here)")
	flag.Parse()
	data := "hello"
	if flag.NArg() > 0 {
		data = flag.Arg(0)
	}

	c, err := net.Dial("tcp", *addr)
	if err != nil {
		say("dial error: %v", err)
		os.Exit(1)
	}
	say("dial ok")
	if _, err := c.Write([]byte(data)); err != nil {
		say("write error: %v", err)
	} else {
		say("write %d bytes: %s", len(data), data)
	}
	c.Close()
	say("close")
}
