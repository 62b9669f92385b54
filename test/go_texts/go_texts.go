// go_texts prints Go's err.Error() for every error situation rill's
// test_go_texts.c and test_facade_go_texts.c pin (docs/go-model.md G30, G31),
// one "key<TAB>text" line each. Addresses that differ from run to run are
// printed as placeholders, so the tests compare the lines with their own
// pinned texts:
//
//	{listener}  a TCP listener on 127.0.0.1        {local}  the dialing side
//	{closed}    127.0.0.1:P where nobody listens   {closedport}  that P
//	{dir}       the directory for Unix sockets     {dns}    the fake DNS server
//	{deaddns}   a UDP address nobody serves
//
// Loopback only, and no query reaches the system's resolver: every lookup
// goes through a Resolver whose Dial sends it to -dns (or -deaddns). Go
// names in its errors the server of /etc/resolv.conf it meant to ask; the
// program prints the server it really asked instead, which is what Go
// would print if resolv.conf named it.
//
// Usage: go_texts -dns 127.0.0.1:P -deaddns 127.0.0.1:Q -dir /tmp/d -closed P
// The fake DNS server answers NXDOMAIN for nx.test, REFUSED for
// refused.test, SERVFAIL for servfail.test and never answers drop.test.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var replacements []string // pairs: what, placeholder

func show(key string, err error) {
	text := "<nil>"
	if err != nil {
		text = err.Error()
	}
	// The local address of Go's own DNS socket ("127.0.0.1:40000->") is
	// one rill cannot know (c-ares keeps its socket): left out.
	text = udpLocal.ReplaceAllString(text, "read udp ")
	for i := 0; i+1 < len(replacements); i += 2 {
		text = strings.ReplaceAll(text, replacements[i], replacements[i+1])
	}
	fmt.Printf("%s\t%s\n", key, text)
}

var udpLocal = regexp.MustCompile(`read udp [0-9.]+:[0-9]+->`)

func resolver(server *string, asked *string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		*asked = address
		var d net.Dialer
		return d.DialContext(ctx, network, *server)
	}}
}

func main() {
	dns := flag.String("dns", "", "the fake DNS server")
	deadDNS := flag.String("deaddns", "", "a UDP address nobody serves")
	dir := flag.String("dir", "", "a directory for Unix sockets")
	closedPort := flag.Int("closed", 0, "a TCP port nobody listens on")
	flag.Parse()
	closed := "127.0.0.1:" + strconv.Itoa(*closedPort)
	replacements = append(replacements, closed, "{closed}", ":"+strconv.Itoa(*closedPort)+":", ":{closedport}:",
		*dir, "{dir}")

	// Malformed addresses and networks.
	dial := func(network, address string) error {
		c, err := net.DialTimeout(network, address, 2*time.Second)
		if c != nil {
			c.Close()
		}
		return err
	}
	show("addr_noport", dial("tcp", "1.2.3.4"))
	show("addr_colons", dial("tcp", "::1:80"))
	show("addr_nobracket", dial("tcp", "[::1:80"))
	show("addr_openbracket", dial("tcp", "a[b:80"))
	show("addr_closebracket", dial("tcp", "a]b:80"))
	show("addr_port", dial("tcp", "127.0.0.1:99999"))
	show("addr_service", dial("tcp", "127.0.0.1:nosuchservice"))
	show("addr_missing", dial("tcp", ""))
	show("addr_family", dial("tcp4", "[::1]:1"))
	show("unknown_network", dial("tcp7", "127.0.0.1:1"))
	_, err := net.Listen("tcp", "1.2.3.4")
	show("listen_noport", err)
	_, err = net.Listen("tcp", "127.0.0.1:-1")
	show("listen_port", err)
	_, err = net.Listen("tcp7", "127.0.0.1:0")
	show("listen_unknown_network", err)

	// Dials that fail, G30's ":port" included.
	show("dial_refused", dial("tcp", closed))
	show("dial_local_system", dial("tcp", ":"+strconv.Itoa(*closedPort)))

	// A listener, a connection and their errors.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	replacements = append([]string{l.Addr().String(), "{listener}"}, replacements...)
	_, err = net.Listen("tcp", l.Addr().String())
	show("listen_in_use", err)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	replacements = append([]string{c.LocalAddr().String(), "{local}"}, replacements...)
	s, _ := l.Accept()
	buf := make([]byte, 16)
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err = c.Read(buf)
	show("read_timeout", err)
	s.Close()
	c.SetReadDeadline(time.Time{})
	_, err = c.Read(buf)
	show("read_eof", err)
	c.Close()
	tc := c.(*net.TCPConn)
	_, err = c.Read(buf)
	show("read_closed", err)
	_, err = c.Write(buf)
	show("write_closed", err)
	show("close_closed", c.Close())
	show("set_no_delay_closed", tc.SetNoDelay(true))
	show("set_keep_alive_closed", tc.SetKeepAlive(true))
	show("set_linger_closed", tc.SetLinger(1))
	show("set_read_buffer_closed", tc.SetReadBuffer(4096))
	show("set_write_buffer_closed", tc.SetWriteBuffer(4096))
	show("set_deadline_closed", c.SetDeadline(time.Now()))
	l.Close()
	_, err = l.Accept()
	show("accept_closed", err)
	show("listener_close_closed", l.Close())

	// Unix sockets.
	path := filepath.Join(*dir, "s.sock")
	show("unix_dial_missing", dial("unix", filepath.Join(*dir, "missing.sock")))
	ul, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_, err = net.Listen("unix", path)
	show("unix_listen_in_use", err)
	uc, err := net.Dial("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	us, _ := ul.Accept()
	uc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err = uc.Read(buf)
	show("unix_read_timeout_client", err)
	us.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err = us.Read(buf)
	show("unix_read_timeout_server", err)
	uc.Close()
	us.Close()
	ul.Close()
	_, err = ul.Accept()
	show("unix_accept_closed", err)

	// DNS, through the fake server (and an address nobody serves).
	replacements = append(replacements, *deadDNS, "{deaddns}", *dns, "{dns}")
	var asked string
	r := resolver(dns, &asked)
	lookup := func(name string) error {
		_, err := r.LookupHost(context.Background(), name)
		return asking(err, asked, *dns)
	}
	show("dns_nxdomain", lookup("nx.test"))
	show("dns_refused", lookup("refused.test"))
	show("dns_servfail", lookup("servfail.test"))
	d := net.Dialer{Resolver: r}
	_, err = d.Dial("tcp", "nx.test:80")
	show("dial_nxdomain", asking(err, asked, *dns))
	d.Timeout = 300 * time.Millisecond
	_, err = d.Dial("tcp", "drop.test:80")
	show("dial_dns_timeout", asking(err, asked, *dns))
	var deadAsked string
	dead := resolver(deadDNS, &deadAsked)
	_, err = dead.LookupHost(context.Background(), "nx.test")
	show("dns_unreachable", asking(err, deadAsked, *deadDNS))
}

// The error with the server Go meant to ask (resolv.conf's) replaced by the
// one its Dial really asked.
func asking(err error, meant, asked string) error {
	if err == nil || meant == "" {
		return err
	}
	return errors.New(strings.Replace(err.Error(), " on "+meant+":", " on "+asked+":", 1))
}
