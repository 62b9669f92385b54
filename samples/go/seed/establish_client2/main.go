// establish_client2 — dialing a server whose listen backlog is full (seed
// 001, "conn establish" case 2). Run against establish_server2, which has a
// backlog of 4 and accepts only when told. Mirrored by
// samples/seed/establish_client2.c.
//
// Serial dials complete at once while the kernel can queue them; then a
// dial waits: the server's kernel drops the SYN and the dial completes only
// once the server accepted and a SYN retransmission (after 1 s on Linux)
// finds room. A dial with a timeout ends with "i/o timeout" instead.
//
// The server accepts nothing until this client writes a byte to its control
// socket, which it does once its last dial is stuck: the socket is in
// SYN_SENT (connect() sent the SYN, and the full queue dropped it). So every
// line below follows from events, never from how fast either process got to
// run.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

const maxConns = 1000

func say(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

func controlAddress(addr string) string { return "@rill-seed-establish2-" + addr }

// tcpSynSent is TCP_SYN_SENT, the first byte of Linux's struct tcp_info.
const tcpSynSent = 2

// synSent tells whether connect() has sent the SYN: the socket waits in
// SYN_SENT.
func synSent(fd int) bool {
	var info [8]byte
	n := uint32(len(info))
	_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.IPPROTO_TCP,
		syscall.TCP_INFO, uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
	return errno == 0 && info[0] == tcpSynSent
}

type dialResult struct {
	c    net.Conn
	err  error
	took time.Duration
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8882", "address to dial")
	short := flag.Bool("short", false, "shorten the timeouts")
	flag.Parse()
	timeout := 2 * time.Second
	if *short {
		timeout = 200 * time.Millisecond
	}

	control, err := net.Dial("unix", controlAddress(*addr))
	if err != nil {
		say("control dial error: %v", err)
		os.Exit(1)
	}
	defer control.Close()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Phase 1: dial with a timeout until one times out. The successes are
	// summed up in one line: their number is the server's queue length.
	atOnce := 0
	for len(conns) < maxConns {
		c, err := net.DialTimeout("tcp", *addr, timeout)
		if err != nil {
			say("1-%d: connect to server ok (at once)", atOnce)
			say("%d: dial error: %v", len(conns)+1, err)
			break
		}
		conns = append(conns, c)
		atOnce++
		// A pause between dials: on a loaded machine the kernel may finish
		// queueing one connection a little after its dial returned.
		time.Sleep(2 * time.Millisecond)
	}
	status := 0
	if len(conns) == maxConns {
		say("1-%d: connect to server ok (no dial ever waited)", len(conns))
		status = 1
	}
	// Phase 2: a dial without a timeout waits while the server does not
	// accept. Once it is stuck, the server is told to accept; the dial then
	// completes with the next SYN retransmission.
	if len(conns) < maxConns {
		fds := make(chan int, 1)
		d := net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { fds <- int(fd) })
		}}
		done := make(chan dialResult, 1)
		go func() {
			t0 := time.Now()
			c, err := d.Dial("tcp", *addr)
			done <- dialResult{c, err, time.Since(t0)}
		}()
		fd := -1
		var r *dialResult
		for r == nil {
			select {
			case fd = <-fds:
			case res := <-done:
				r = &res
				continue
			default:
			}
			if synSent(fd) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if _, err := control.Write([]byte("a")); err != nil {
			status = 1
		}
		if r == nil {
			res := <-done
			r = &res
		}
		if r.err != nil {
			say("%d: dial error: %v", len(conns)+2, r.err)
			status = 1
		} else {
			conns = append(conns, r.c)
			how := "at once"
			if r.took >= 100*time.Millisecond {
				how = "after waiting for an accept"
			}
			// +1: the dial that timed out had a number too.
			say("%d: connect to server ok (%s)", len(conns)+1, how)
		}
	} else {
		control.Write([]byte("a")) // let the server finish
	}
	if status != 0 {
		for _, c := range conns {
			c.Close()
		}
		os.Exit(status)
	}
}
