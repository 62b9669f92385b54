// tls_echo_server — the TLS benchmark's Go column (run_tls.sh): crypto/tls
// over goroutines, one per connection, as Go is written; run with
// GOMAXPROCS=1 so it has one core, like the other servers.
//
//	tls_echo_server --cert FILE --key FILE [--listen ADDR] [--quiet]
//
// TLS 1.3 only, X25519 only; the TLS 1.3 suite is not configurable in Go,
// but the load generator offers only TLS_AES_128_GCM_SHA256. Session tickets
// as crypto/tls issues them by default (one per handshake, stateless). Each
// connection reads into a 32 KiB buffer and writes back what it read, like
// samples/go's plain echo; Close sends a close_notify. SIGINT/SIGTERM end
// it.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func echo(c net.Conn) {
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
			return // EOF, a reset, a bad record: the connection is over
		}
	}
}

func main() {
	address := flag.String("listen", "127.0.0.1:7000", "address to listen on")
	certFile := flag.String("cert", "", "PEM certificate (chain)")
	keyFile := flag.String("key", "", "PEM private key")
	quiet := flag.Bool("quiet", false, "print nothing but errors")
	flag.Parse()
	if *certFile == "" || *keyFile == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: tls_echo_server --cert FILE --key FILE [--listen ADDR] [--quiet]")
		os.Exit(2)
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tls_echo_server: %v\n", err)
		os.Exit(1)
	}
	config := &tls.Config{
		Certificates:     []tls.Certificate{cert},
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519},
	}
	tcp, err := net.Listen("tcp", *address)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tls_echo_server: %v\n", err)
		os.Exit(1)
	}
	ln := tls.NewListener(tcp, config)
	if !*quiet {
		fmt.Printf("tls_echo_server: listening on %s\n", *address)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			break // closed by the signal
		}
		// net's TCP connections have TCP_NODELAY already, as the C servers set it.
		go echo(c)
	}
	if !*quiet {
		fmt.Fprintln(os.Stderr, "tls_echo_server: shutting down")
	}
}
