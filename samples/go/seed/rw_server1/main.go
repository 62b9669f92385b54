// rw_server1 — reading a connection that has no data yet (seed 001,
// "conn.Read" case 1): the read waits, parked, using no CPU, until
// rw_client1 sends; then the read returns what came; then EOF. Mirrored by
// samples/seed/rw_server1.c.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

func say(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8891", "address to listen on")
	short := flag.Bool("short", false, "shorten the sleeps")
	flag.Parse()
	clientDelay := 2 * time.Second
	if *short {
		clientDelay = 200 * time.Millisecond
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

	buf := make([]byte, 10)
	say("start to read from conn")
	t0, cpu0 := time.Now(), cpuTime()
	n, err := c.Read(buf)
	waited, cpu := time.Since(t0), cpuTime()-cpu0
	if err != nil {
		say("conn read error: %v", err)
		os.Exit(1)
	}
	say("read %d bytes, content is %s", n, buf[:n])
	// Half the client's delay: the accept itself took part of it.
	if waited >= clientDelay/2 {
		say("the read waited for the data")
	}
	if cpu*10 < waited {
		say("and used (almost) no CPU while it waited")
	}
	say("start to read from conn")
	if n, err = c.Read(buf); err != nil {
		say("conn read error: %v", err)
	} else {
		say("read %d bytes, content is %s", n, buf[:n])
	}
}
