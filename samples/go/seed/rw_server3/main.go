// rw_server3 — reads only after the client has closed (seed 001,
// "conn.Read" case 4): the data that was sent before the close comes first,
// then EOF. Run with rw_client3. Mirrored by samples/seed/rw_server3.c.
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
	addr := flag.String("addr", "127.0.0.1:8893", "address to listen on")
	short := flag.Bool("short", false, "shorten the sleeps")
	flag.Parse()
	pause := 10 * time.Second
	if *short {
		pause = 100 * time.Millisecond
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
	for i := 0; i < 2; i++ {
		time.Sleep(pause) // the client is long gone by then
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
