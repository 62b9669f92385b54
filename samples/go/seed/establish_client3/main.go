// establish_client3 — a dial with a timeout to a peer that does not answer
// (seed 001, "conn establish" case 3): "i/o timeout". Mirrored by
// samples/seed/establish_client3.c.
//
// The seed dials a far host over a slow network. To be reproducible
// offline, this program makes the peer itself: a plain socket listening on
// --addr with a backlog of 0 that never accepts. One connection fills its
// queue; from then on the kernel drops every SYN, so the next dial hangs
// until its timeout, as over a lossy network.
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

// stuckListener is scaffolding, not the experiment: plain system calls.
func stuckListener(address string) (int, error) {
	a, err := net.ResolveTCPAddr("tcp4", address)
	if err != nil {
		return -1, err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	sa := &syscall.SockaddrInet4{Port: a.Port}
	copy(sa.Addr[:], a.IP.To4())
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err = syscall.Bind(fd, sa); err == nil {
		err = syscall.Listen(fd, 0)
	}
	if err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8883", "where the peer that never answers listens")
	short := flag.Bool("short", false, "shorten the timeout")
	flag.Parse()
	timeout := 2 * time.Second
	if *short {
		timeout = 200 * time.Millisecond
	}

	fd, err := stuckListener(*addr)
	if err != nil {
		say("cannot listen on %s", *addr)
		os.Exit(1)
	}
	defer syscall.Close(fd)
	filler, err := net.DialTimeout("tcp", *addr, timeout)
	if err != nil {
		say("filling the backlog failed: %v", err)
		os.Exit(1)
	}
	defer filler.Close()
	say("a peer that never answers is ready")

	say("begin dial...")
	t0 := time.Now()
	conn, err := net.DialTimeout("tcp", *addr, timeout)
	took := time.Since(t0)
	if err == nil {
		say("dial ok")
		conn.Close()
		os.Exit(1)
	}
	say("dial error: %v", err)
	if took+5*time.Millisecond >= timeout && took < timeout+500*time.Millisecond {
		say("the dial gave up after its %d ms timeout", timeout.Milliseconds())
	} else {
		say("the dial gave up after %d ms, not after its %d ms timeout", took.Milliseconds(), timeout.Milliseconds())
	}
}
