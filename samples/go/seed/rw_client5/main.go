// rw_client5 — writes 64 KiB chunks until an error (seed 001, "conn.Write"
// cases 2 and 3). Run against rw_server5. Mirrored by
// samples/seed/rw_client5.c.
//
// The seed printed every write and its total; those numbers depend on the
// kernel's buffer sizes, so this prints events instead:
//   - "write blocked": a write that took long, because the server did not
//     read and both kernel buffers were full;
//   - "write resumed": a write that completed after that, once the server
//     read. Certain: the server reads 480000 bytes, more than the buffers
//     (2 x 64 KiB with the 32 KiB SO_SNDBUF/SO_RCVBUF the kernel doubles,
//     plus a chunk in flight) hold;
//   - the error when the server closes with unread data. The failing write
//     reports how much of its chunk reached the kernel, anything from 0 up:
//     that depends on where the kernel stood, so only n < 65536 is printed
//     (rw_server6 checks such counts exactly).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

func say(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

func positive(n int64) string {
	if n > 0 {
		return ">0"
	}
	return "0"
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8895", "address to dial")
	short := flag.Bool("short", false, "shorten the sleeps")
	flag.Parse()
	long := time.Second
	if *short {
		long = 100 * time.Millisecond
	}

	c, err := net.Dial("tcp", *addr)
	if err != nil {
		say("dial error: %v", err)
		os.Exit(1)
	}
	say("dial ok")
	defer c.Close()
	c.(*net.TCPConn).SetWriteBuffer(32 * 1024)
	chunk := make([]byte, 65536)
	var total int64
	blocked, resumed := false, false
	for {
		t0 := time.Now()
		n, err := c.Write(chunk)
		took := time.Since(t0)
		total += int64(n)
		if err != nil {
			cmp := "<"
			if n >= len(chunk) {
				cmp = ">="
			}
			say("write n %s %d bytes, error: %v", cmp, len(chunk), err)
			break
		}
		if !blocked && took >= long {
			blocked = true
			say("write blocked: the kernel buffers were full")
		} else if blocked && !resumed {
			resumed = true
			say("write resumed: the server reads")
		}
	}
	say("write %s bytes in total", positive(total))
}
