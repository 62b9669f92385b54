// go_tls_peer is Go's crypto/tls on the other end of rill's TLS tests: a
// TLS echo server for rill to dial, and a client that dials a rill TLS
// listener. Both print what Go saw, so a test can check rill against Go:
// the negotiated parameters, and err.Error() word for word.
//
//	go_tls_peer server -cert C -key K [-client-ca CA] [-alpn a,b]
//	    listens on 127.0.0.1:0, prints "listening ADDR", echoes every
//	    connection and prints "conn alpn=X resumed=B" or "conn error: TEXT"
//	    per handshake; exits when its parent (the test) is gone.
//	go_tls_peer client -addr A -ca CA [-server-name N] [-alpn a,b]
//	    [-cert C -key K] [-msg M] [-dials N]
//	    [-ctx-timeout D | -cancel-after D | -dial-timeout D]
//	    dials N times (one session cache: the later dials resume), writes M,
//	    reads the echo, closes; prints "ok alpn=X resumed=B" per dial, or
//	    "error: TEXT" and exits 1. With a -ctx-timeout or -cancel-after it
//	    dials by tls.Dialer.DialContext under such a context; with a
//	    -dial-timeout by tls.DialWithDialer, the net.Dialer's Timeout D.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

var out sync.Mutex

func say(format string, args ...interface{}) {
	out.Lock()
	defer out.Unlock()
	fmt.Printf(format+"\n", args...)
}

func fail(err error) {
	say("error: %s", err.Error())
	os.Exit(1)
}

func certPool(file string) *x509.CertPool {
	pem, err := os.ReadFile(file)
	if err != nil {
		fail(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail(errors.New("no certificate in " + file))
	}
	return pool
}

func alpnList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func server(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	certFile := fs.String("cert", "", "certificate (PEM)")
	keyFile := fs.String("key", "", "key (PEM)")
	clientCA := fs.String("client-ca", "", "require client certificates signed by this CA")
	alpn := fs.String("alpn", "", "protocols, comma-separated")
	fs.Parse(args)
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fail(err)
	}
	config := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: alpnList(*alpn)}
	if *clientCA != "" {
		config.ClientCAs = certPool(*clientCA)
		config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", config)
	if err != nil {
		fail(err)
	}
	say("listening %s", ln.Addr())
	go func() { // a test that died without killing its peer leaves none behind
		parent := os.Getppid()
		for os.Getppid() == parent {
			time.Sleep(200 * time.Millisecond)
		}
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			fail(err)
		}
		go func(c *tls.Conn) {
			defer c.Close()
			if err := c.Handshake(); err != nil {
				say("conn error: %s", err.Error())
				return
			}
			st := c.ConnectionState()
			say("conn alpn=%s resumed=%t", st.NegotiatedProtocol, st.DidResume)
			io.Copy(c, c)
		}(c.(*tls.Conn))
	}
}

func client(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port")
	ca := fs.String("ca", "", "trusted CA (PEM)")
	serverName := fs.String("server-name", "", "name to verify (default: the host)")
	alpn := fs.String("alpn", "", "protocols, comma-separated")
	certFile := fs.String("cert", "", "client certificate (PEM)")
	keyFile := fs.String("key", "", "client key (PEM)")
	msg := fs.String("msg", "hello", "what to echo")
	dials := fs.Int("dials", 1, "dials sharing one session cache")
	ctxTimeout := fs.Duration("ctx-timeout", 0, "dial by tls.Dialer.DialContext under a context with this timeout")
	cancelAfter := fs.Duration("cancel-after", 0, "dial by tls.Dialer.DialContext under a context cancelled after this long")
	dialTimeout := fs.Duration("dial-timeout", 0, "dial by tls.DialWithDialer with this Timeout")
	fs.Parse(args)
	config := &tls.Config{
		RootCAs:            certPool(*ca),
		ServerName:         *serverName,
		NextProtos:         alpnList(*alpn),
		ClientSessionCache: tls.NewLRUClientSessionCache(8),
	}
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fail(err)
		}
		config.Certificates = []tls.Certificate{cert}
	}
	for i := 0; i < *dials; i++ {
		c, err := dial(*addr, config, *ctxTimeout, *cancelAfter, *dialTimeout)
		if err != nil {
			fail(err)
		}
		if _, err := c.Write([]byte(*msg)); err != nil {
			fail(err)
		}
		got := make([]byte, len(*msg))
		if _, err := io.ReadFull(bufio.NewReader(c), got); err != nil {
			fail(err)
		}
		if string(got) != *msg {
			fail(fmt.Errorf("echo: got %q, want %q", got, *msg))
		}
		st := c.ConnectionState()
		say("ok alpn=%s resumed=%t", st.NegotiatedProtocol, st.DidResume)
		c.Close()
	}
}

// tls.Dial, tls.DialWithDialer when a dial timeout is asked for, or
// tls.Dialer.DialContext when a context is.
func dial(addr string, config *tls.Config, timeout, cancelAfter, dialTimeout time.Duration) (*tls.Conn, error) {
	if dialTimeout != 0 {
		return tls.DialWithDialer(&net.Dialer{Timeout: dialTimeout}, "tcp", addr, config)
	}
	if timeout == 0 && cancelAfter == 0 {
		return tls.Dial("tcp", addr, config)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if timeout != 0 {
		ctx, cancel = context.WithTimeout(context.Background(), timeout)
	} else {
		time.AfterFunc(cancelAfter, cancel)
	}
	defer cancel()
	c, err := (&tls.Dialer{Config: config}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go_tls_peer server|client [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		server(os.Args[2:])
	case "client":
		client(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: go_tls_peer server|client [flags]")
		os.Exit(2)
	}
}
