// establish_server2 — a server that does not accept, so its listen backlog
// fills up (seed 001, "conn establish" case 2). Run with establish_client2.
// Mirrored by samples/seed/establish_server2.c.
//
// The backlog is 4: net.Listen takes it from somaxconn (4096 here), so the
// socket is made by hand and handed to net.FileListener. The seed's server
// sleeps before each accept; this one accepts nothing until the client says
// so over a control socket, once a dial of its own is stuck on the full
// backlog. A sleep raced with the client (a client started late saw an
// accept too early), the client's word does not. Then it accepts every
// connection the client made.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"
)

const backlog = 4

// What establish_client2 makes: backlog+1 that the kernel queues at once
// (Linux queues one more than the backlog), then one that waits for an
// accept. The dial that times out in between never reaches the queue.
const total = backlog + 1 + 1

func say(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

// controlAddress is the pair's control socket, in Linux's abstract namespace
// (no file to clean up), named after the experiment's address.
func controlAddress(addr string) string { return "@rill-seed-establish2-" + addr }

func listenBacklog(address string, n int) (net.Listener, error) {
	a, err := net.ResolveTCPAddr("tcp4", address)
	if err != nil {
		return nil, err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	sa := &syscall.SockaddrInet4{Port: a.Port}
	copy(sa.Addr[:], a.IP.To4())
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	if err := syscall.Listen(fd, n); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "listener")
	defer f.Close() // FileListener keeps a duplicate
	return net.FileListener(f)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8882", "address to listen on")
	flag.Bool("short", false, "accepted for symmetry with the other experiments")
	flag.Parse()

	// The control socket first: the client may start once "listen ok" is out.
	controlL, err := net.Listen("unix", controlAddress(*addr))
	if err != nil {
		say("control listen error: %v", err)
		os.Exit(1)
	}
	defer controlL.Close()
	l, err := listenBacklog(*addr, backlog)
	if err != nil {
		say("listen error: %v", err)
		os.Exit(1)
	}
	defer l.Close()
	say("listen ok")

	// Nothing is accepted on l until the client asks for it.
	control, err := controlL.Accept()
	if err == nil {
		defer control.Close()
		_, err = control.Read(make([]byte, 1))
	}
	if err != nil {
		say("control error: %v", err)
		os.Exit(1)
	}
	var conns []net.Conn
	for i := 1; i <= total; i++ {
		c, err := l.Accept()
		if err != nil {
			say("accept error: %v", err)
			os.Exit(1)
		}
		conns = append(conns, c)
		say("%d: accept a new connection", i)
	}
	for _, c := range conns {
		c.Close()
	}
}
