// rw_client6 — rw_client5 with a write deadline (seed 001, "conn.Write"
// case 4). Run against rw_server6, which does not read until the deadline
// has passed. Mirrored by samples/seed/rw_client6.c.
//
// The write that is blocked when the deadline passes returns "i/o timeout"
// AND the bytes it did write; a later write fails at once. After clearing
// the deadline, the client sends the total its writes reported as an
// 8-byte trailer, so the server can check that no byte was hidden.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

func say(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

func positive(n uint64) string {
	if n > 0 {
		return ">0"
	}
	return "0"
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8896", "address to dial")
	short := flag.Bool("short", false, "shorten the sleeps")
	flag.Parse()
	deadline := time.Second
	if *short {
		deadline = 100 * time.Millisecond
	}

	c, err := net.Dial("tcp", *addr)
	if err != nil {
		say("dial error: %v", err)
		os.Exit(1)
	}
	say("dial ok")
	c.(*net.TCPConn).SetWriteBuffer(32 * 1024)
	c.SetWriteDeadline(time.Now().Add(deadline))
	chunk := make([]byte, 65536)
	var total uint64
	for {
		n, err := c.Write(chunk)
		total += uint64(n)
		if err != nil {
			// How far the last write got depends on the kernel's buffers.
			cmp := "<"
			if n >= len(chunk) {
				cmp = ">="
			}
			say("write n %s %d bytes, error: %v", cmp, len(chunk), err)
			break
		}
	}
	say("write %s bytes in total", positive(total))
	n, err := c.Write(chunk)
	say("write again: %d bytes, error: %v", n, err)
	c.SetWriteDeadline(time.Time{})
	var trailer [8]byte
	binary.BigEndian.PutUint64(trailer[:], total)
	if _, err := c.Write(trailer[:]); err != nil {
		say("write error: %v", err)
	} else {
		say("no deadline: write the total as an 8-byte trailer")
	}
	c.Close()
	say("close")
}
