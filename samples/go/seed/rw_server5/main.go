// rw_server5 — a slow reader that dies (seed 001, "conn.Write" cases 2 and
// 3). Run with rw_client5. Mirrored by samples/seed/rw_server5.c.
//
// It does not read at first, so the client's writes fill both kernel
// buffers and block; then it reads 60000 bytes a few times, so the client's
// writes resume; then it closes the connection with unread data, which
// resets it: the client's blocked write fails with the bytes it had written
// so far. The seed killed the server; closing with unread data sends the
// same RST. Small socket buffers keep the amounts small.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

const reads = 8 // 480000 bytes: more than both buffers hold, see rw_client5

func say(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

func main() {
	addr := flag.String("addr", "127.0.0.1:8895", "address to listen on")
	short := flag.Bool("short", false, "shorten the sleeps")
	flag.Parse()
	first, every := 10*time.Second, 5*time.Second
	if *short {
		first, every = 300*time.Millisecond, 50*time.Millisecond
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
	c.(*net.TCPConn).SetReadBuffer(32 * 1024)
	time.Sleep(first)
	buf := make([]byte, 60000)
	for i := 0; i < reads; i++ {
		time.Sleep(every)
		say("start to read from conn")
		// io.ReadFull: one read returns what the small buffer holds.
		n, err := io.ReadFull(c, buf)
		if err != nil {
			say("conn read error: %v", err)
			break
		}
		say("read %d bytes", n)
	}
	say("close with unread data (resets the connection)")
	c.Close()
}
