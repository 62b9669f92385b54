// echo_server — the Go program that samples/echo_server.c mirrors.
//
//	go run ./samples/go --listen 127.0.0.1:7000 [--quiet]
//
// Listens on ADDR (default 127.0.0.1:7000), echoes every byte back, and
// serves until SIGINT or SIGTERM, then stops accepting, closes every
// connection and exits cleanly.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

type server struct {
	quiet    bool
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	accepted uint64
	wg       sync.WaitGroup
}

func (s *server) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.conns == nil {
			return false // shutting down
		}
		s.conns[c] = struct{}{}
		s.accepted++
	} else {
		delete(s.conns, c)
	}
	return true
}

// echo copies the connection onto itself until EOF or an error, then closes
// it. io.Copy reuses one 32 KiB buffer per connection, like a read/write loop.
func (s *server) echo(c net.Conn) {
	defer s.wg.Done()
	defer s.track(c, false)
	defer c.Close()
	buf := make([]byte, 32*1024)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !s.quiet {
				fmt.Fprintf(os.Stderr, "echo_server: %v\n", err)
			}
			return
		}
	}
}

func main() {
	address := flag.String("listen", "127.0.0.1:7000", "address to listen on")
	network := flag.String("network", "tcp", "tcp, tcp4, tcp6 or unix")
	quiet := flag.Bool("quiet", false, "print nothing but errors")
	flag.Parse()

	ln, err := net.Listen(*network, *address)
	if err != nil {
		fmt.Fprintf(os.Stderr, "echo_server: %v\n", err)
		os.Exit(1)
	}
	s := &server{quiet: *quiet, conns: make(map[net.Conn]struct{})}
	if !s.quiet {
		fmt.Printf("echo_server: listening on %s (Go netpoller)\n", ln.Addr())
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		s.mu.Lock()
		if !s.quiet {
			fmt.Fprintf(os.Stderr, "echo_server: signal %d, shutting down (%d connections served)\n",
				sig.(syscall.Signal), s.accepted)
		}
		ln.Close()
		for c := range s.conns {
			c.Close()
		}
		s.conns = nil
		s.mu.Unlock()
	}()

	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				break
			}
			// Like the rill server: report, back off a little (out of
			// descriptors, say) and keep accepting.
			fmt.Fprintf(os.Stderr, "echo_server: %v\n", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !s.track(c, true) {
			c.Close()
			break
		}
		s.wg.Add(1)
		go s.echo(c)
	}
	s.wg.Wait()
}
