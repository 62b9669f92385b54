// rw_server4 — reads under deadlines (seed 001, "conn.Read" case 5). Run
// with rw_client4, which sends 65536 bytes after a pause and closes.
// Mirrored by samples/seed/rw_server4.c.
//
// The seed set a 10 us deadline and saw either "0 bytes, i/o timeout" or
// all the data, depending on timing, never part of the data with the
// error. Here the three cases are made deterministic:
//  1. a deadline that passes before any data came: 0 bytes, i/o timeout;
//  2. a deadline already passed while data waits: still 0 bytes and
//     i/o timeout (the deadline is checked before reading), nothing lost;
//  3. a deadline in the future: every byte, then EOF.
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
	addr := flag.String("addr", "127.0.0.1:8894", "address to listen on")
	short := flag.Bool("short", false, "shorten the sleeps")
	flag.Parse()
	soon, pause := time.Second, 4*time.Second
	if *short {
		soon, pause = 100*time.Millisecond, 500*time.Millisecond
	}

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
	buf := make([]byte, 65536)

	say("start to read from conn (deadline soon, no data yet)")
	c.SetReadDeadline(time.Now().Add(soon))
	n, err := c.Read(buf)
	say("conn read %d bytes, error: %v", n, err)

	time.Sleep(pause) // the data arrives meanwhile
	say("start to read from conn (deadline passed, data waiting)")
	c.SetReadDeadline(time.Now().Add(-time.Millisecond))
	n, err = c.Read(buf)
	say("conn read %d bytes, error: %v", n, err)

	say("start to read from conn (deadline in 1 s)")
	c.SetReadDeadline(time.Now().Add(time.Second))
	// Every read returns what is there; how it is split depends on the
	// kernel, so only the sum is printed.
	total := 0
	for total < len(buf) {
		n, err = c.Read(buf[total:])
		total += n
		if err != nil {
			say("conn read error: %v", err)
			break
		}
	}
	say("read %d bytes in total: nothing was lost to the timeouts", total)
	say("start to read from conn")
	if n, err = c.Read(buf); err != nil {
		say("conn read error: %v", err)
	} else {
		say("read %d bytes", n)
	}
}
