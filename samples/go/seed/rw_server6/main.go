// rw_server6 — reads only after the client's write deadline has passed,
// then everything until EOF (seed 001, "conn.Write" case 4). Run with
// rw_client6, which ends its stream with an 8-byte trailer: the number of
// bytes its writes reported, the timed-out partial write included. The
// server checks that it received exactly that many. Mirrored by
// samples/seed/rw_server6.c.
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

func main() {
	addr := flag.String("addr", "127.0.0.1:8896", "address to listen on")
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
	c.(*net.TCPConn).SetReadBuffer(32 * 1024)
	if *short { // past the client's write deadline
		time.Sleep(300 * time.Millisecond)
	} else {
		time.Sleep(3 * time.Second)
	}
	say("start to read from conn until EOF")
	buf := make([]byte, 65536)
	var last [8]byte // the stream's last 8 bytes
	var total uint64
	for {
		n, err := c.Read(buf)
		for _, b := range buf[:n] {
			copy(last[:], last[1:])
			last[7] = b
		}
		total += uint64(n)
		if err != nil {
			say("conn read error: %v", err)
			break
		}
	}
	reported := binary.BigEndian.Uint64(last[:])
	if total >= 8 && total-8 == reported {
		say("received exactly the bytes the client's writes reported, the partial one included")
	} else {
		say("received %d bytes, but the client reported %d", total-8, reported)
	}
}
