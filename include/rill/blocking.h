/** @file
 * rill — blocking network calls for fibers (Go's net, on the callback API).
 *
 * Inside a fiber these calls look blocking and behave as Go's do
 * (docs/go-model.md G12-G25); underneath, the fiber parks on the base while the
 * callback API does the work. Outside a fiber they return RILL_ENOTFIBER.
 *
 * Handles: rill_net_close() closes a connection, and
 * rill_net_listener_close() a listener, and wakes every fiber waiting on it
 * with RILL_ECLOSED ("use of closed network connection"); the handle stays
 * valid — every later call, a second close included, returns RILL_ECLOSED
 * (G23) — until rill_net_conn_free() / rill_net_listener_free(), which
 * close it first if needed. A free may come from any fiber, even while
 * others are still inside a call on the handle: they return RILL_ECLOSED and
 * the memory goes when the last of them has returned. Call no function on a
 * handle after freeing it.
 *
 * Memory comes from rill's allocator (rill_set_allocator); when it fails the
 * call returns RILL_ENOMEM and loses no bytes: a read that could not keep
 * what it leaves for the next read leaves it with the connection. */
#ifndef RILL_BLOCKING_H
#define RILL_BLOCKING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rill/chan.h"
#include "rill/fiber.h"
#include "rill/net.h"
#include "rill/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A connection for fibers (net.Conn): see the top of this file. */
typedef struct rill_net_conn rill_net_conn;
/** A listener for fibers (net.Listener): see the top of this file. */
typedef struct rill_net_listener rill_net_listener;

/** net.Listen. `options` may be NULL. */
RILL_API int rill_net_listen(const char *network, const char *address, const rill_socket_config *options,
                             rill_net_listener **out);
/** Listener.Accept: parks until a connection arrives. Accept errors are
 * handed to the caller, as Go does: -EMFILE / -ENFILE when the process is out
 * of descriptors (the listener backs off and keeps running, so accept again
 * after a pause), RILL_ENOMEM, RILL_ETIMEOUT past the accept deadline,
 * RILL_ECLOSED once closed (G28). */
RILL_API int rill_net_accept(rill_net_listener *listener, rill_net_conn **out);
/** Listener.Addr: writes the address listened on ("127.0.0.1:8080") to
 * `buf`; returns its length, or RILL_EINVAL when `size` is too small. */
RILL_API int rill_net_listener_addr(const rill_net_listener *listener, char *buf, size_t size);
/** Formats an error met on the listener Go's way, as
 * rill_listener_format_error() does: "accept tcp 127.0.0.1:8080: use of
 * closed network connection". Answers after close too. An error
 * rill_net_listen() returned is formatted by rill_format_net_error("listen", network, address, err,
 * buf, size). */
RILL_API int rill_net_listener_format_error(const rill_net_listener *listener, const char *op, int err,
                                            char *buf, size_t size);
/** TCPListener.SetDeadline (G33): rill_net_accept() returns RILL_ETIMEOUT
 * once `when` has passed, an absolute time on the clock of
 * rill_net_set_deadline(); 0 for none. The deadline applies to accepts
 * already parked too: they wake with RILL_ETIMEOUT when it passes (at once
 * for a time already past), and a new deadline lets accept work again.
 * Nothing is lost: a connection that arrived meanwhile waits for the next
 * accept (in the kernel's backlog while nobody accepts). Returns 0,
 * RILL_ECLOSED once closed, RILL_EINVAL for NULL, RILL_ENOMEM (the old
 * deadline stands). */
RILL_API int rill_net_listener_set_deadline(rill_net_listener *listener, uint64_t when);
/** Listener.Close: stops listening; every fiber parked in rill_net_accept
 * gets RILL_ECLOSED, and so does every later accept. Returns 0, RILL_ECLOSED
 * if it was closed already, RILL_EINVAL for NULL. rill_net_listener_addr
 * keeps answering, as Go's Addr() does. */
RILL_API int rill_net_listener_close(rill_net_listener *listener);
/** Closes the listener if needed and gives up the handle (see above). */
RILL_API void rill_net_listener_free(rill_net_listener *listener);

/** net.Dial / DialTimeout: options->timeout bounds the lookup and the
 * connect. Host names resolve through the base's resolver. On failure,
 * `errbuf` (may be NULL) gets Go's message, "dial tcp 127.0.0.1:1: connect:
 * connection refused". */
RILL_API int rill_net_dial(const char *network, const char *address, const rill_socket_config *options,
                           rill_net_conn **out, char *errbuf, size_t errbuf_size);

/** Dialer.DialContext (G33): rill_net_dial() that also ends when `ctx`
 * (rill/chan.h; NULL: none) ends, from another fiber's rill_ctx_cancel()
 * or the context's deadline, whichever of those and options->timeout
 * comes first. Exactly one outcome: either the connection, whole and never
 * touched by the cancel (it completed first), or the error, with the
 * socket closed (the cancel won; no descriptor is left behind). A context
 * that ended gives RILL_ECANCELED ("dial tcp 127.0.0.1:1: operation was
 * canceled") or, for its deadline, RILL_ETIMEOUT ("dial tcp 127.0.0.1:1:
 * i/o timeout"), as Go's; a context that had ended before the call fails
 * it at once, without a socket. RILL_EWRONGTHREAD for a context of another
 * thread. The context may be cancelled or freed meanwhile by any fiber. */
RILL_API int rill_net_dial_ctx(rill_ctx *ctx, const char *network, const char *address,
                               const rill_socket_config *options, rill_net_conn **out, char *errbuf,
                               size_t errbuf_size);

/** tls.Dial: rill_net_dial() followed by the TLS handshake as a client of
 * `config` (rill/tls.h: verification against the system store or the
 * config's CA, SNI and the name checked from `address`'s host unless the
 * config names one); options->timeout covers the handshake too. The
 * connection reads and writes plaintext; rill_net_close_write() sends
 * close_notify. `errbuf` gets Go's text ("x509: certificate signed by
 * unknown authority" ...). RILL_EINVAL for a NULL `config`; RILL_ENOTSUP
 * when rill was built without TLS. */
RILL_API int rill_net_tls_dial(const char *network, const char *address,
                               const rill_socket_config *options, rill_tls_config *config,
                               rill_net_conn **out, char *errbuf, size_t errbuf_size);

/** rill_net_tls_dial() under a context, as rill_net_dial_ctx(): the
 * context ending cancels the dial or the handshake. Ended in the
 * handshake, the codes are the same (RILL_ECANCELED, RILL_ETIMEOUT) and
 * `errbuf` gets ctx.Err()'s text, "context canceled" or "context deadline
 * exceeded", as Go's tls.Dialer.DialContext returns it. */
RILL_API int rill_net_tls_dial_ctx(rill_ctx *ctx, const char *network, const char *address,
                                   const rill_socket_config *options, rill_tls_config *config,
                                   rill_net_conn **out, char *errbuf, size_t errbuf_size);

/** tls.Listen: rill_net_listen() whose connections come out of
 * rill_net_accept() after their TLS handshake as a server of `config`
 * (RILL_TLS_SERVER, with a certificate). Go's Accept returns before the
 * handshake and a failure shows at the first Read; here a connection whose
 * handshake fails, or does not finish within the config's handshake
 * timeout, never comes out of accept. RILL_EINVAL for a NULL `config` or a
 * client one; RILL_ENOTSUP without TLS. */
RILL_API int rill_net_tls_listen(const char *network, const char *address,
                                 const rill_socket_config *options, rill_tls_config *config,
                                 rill_net_listener **out);

/** The TLS connection under `conn`, for the rill_tls_conn_*() accessors
 * (tls.Conn's ConnectionState: version, ALPN, resumption, the peer's
 * certificate): NULL for NULL and once `conn` is closed. */
RILL_API const rill_conn *rill_net_tls_conn(const rill_net_conn *conn);

/** conn.Read: returns the bytes available now, at least one, parking while
 * there are none (G12-G14); 0 for len 0 without touching the socket (G17);
 * RILL_EOF at the end (G15); RILL_ETIMEOUT when the read deadline passed
 * (G16); RILL_ECLOSED after rill_net_close (G23); or -errno. Several fibers
 * reading one connection take turns and never share bytes (G25). */
RILL_API ssize_t rill_net_read(rill_net_conn *conn, void *buf, size_t len);

/** conn.Write: returns 0 once every byte reached the kernel (G18), parking
 * while the peer does not read (G19); otherwise the error — RILL_ETIMEOUT
 * (G20), -EPIPE / -ECONNRESET (G21, G22), RILL_ECLOSED, RILL_ENOMEM — with
 * *written (may be NULL) set to exactly how many bytes did reach it; a
 * later write of the rest continues the stream with nothing lost or sent
 * twice. Each call's bytes stay contiguous on the wire, whatever other
 * fibers write (G25).
 * The bytes go to the kernel straight from `buf`, never copied (G32): a
 * writer to a peer that does not read parks without holding memory for
 * what is left, and other fibers keep running. `buf` is rill's only during
 * the call: once it returns, however it ended (a close or free from another
 * fiber included), rill does not read it again. */
RILL_API int rill_net_write(rill_net_conn *conn, const void *buf, size_t len, size_t *written);

/** conn.Close / CloseWrite, and rill_net_conn_free() (see the top of this
 * file). On a TLS connection, rill_net_close() — and rill_net_conn_free()
 * when it closes — is tls.Conn.Close: from a fiber it sends close_notify
 * and parks until the kernel took it, 5 s passed or the peer went away,
 * then closes the socket whatever happened; 0, or RILL_ETIMEOUT / -EPIPE /
 * -ECONNRESET when the alert could not go. While another fiber's write is
 * in progress it only closes (no close_notify after a cut stream), as Go's
 * does; outside a fiber it never waits: the alert goes only if the kernel
 * takes it at once (docs/tls.md, Close). @{ */
RILL_API int rill_net_close(rill_net_conn *conn);
RILL_API int rill_net_close_write(rill_net_conn *conn);
RILL_API void rill_net_conn_free(rill_net_conn *conn);
/** @} */

/** SetReadDeadline / SetWriteDeadline / SetDeadline: absolute times in
 * nanoseconds on the rill_time_now() clock, as Go's
 * conn.SetReadDeadline(time.Now().Add(d)) is rill_net_set_deadline(conn,
 * RILL_DEADLINE_READ, rill_time_now() + d); 0 for none. Moving a deadline
 * wakes no one; a parked call fails when the deadline it waits under
 * passes. */
RILL_API int rill_net_set_deadline(rill_net_conn *conn, int which, uint64_t when);

/** Go's TCPConn.Set* (G4) and Local/RemoteAddr; RILL_ECLOSED once closed. @{ */
RILL_API int rill_net_set_no_delay(rill_net_conn *conn, int on);
RILL_API int rill_net_set_keep_alive(rill_net_conn *conn, int on, uint64_t period);
RILL_API int rill_net_set_linger(rill_net_conn *conn, int seconds);
RILL_API int rill_net_set_read_buffer(rill_net_conn *conn, int bytes);
RILL_API int rill_net_set_write_buffer(rill_net_conn *conn, int bytes);
/** @} */
/** The addresses answer after a close too, as Go's do (the length, or
 * RILL_EINVAL when `size` is too small; RILL_ENOMEM after the close if
 * keeping them then found no memory). @{ */
RILL_API int rill_net_local_addr(const rill_net_conn *conn, char *buf, size_t size);
RILL_API int rill_net_remote_addr(const rill_net_conn *conn, char *buf, size_t size);
/** @} */
/** The connection's descriptor; RILL_ECLOSED once closed. */
RILL_API int rill_net_fd(const rill_net_conn *conn);

/** Formats an error Go's way ("read tcp 127.0.0.1:5000->127.0.0.1:7000: i/o
 * timeout"); `op` as for rill_conn_format_error(): "read", "write",
 * "close", "close_write", or the setter's name ("set_no_delay",
 * "set_deadline", ...). Answers after close too ("set tcp 127.0.0.1:5000:
 * use of closed network connection"). */
RILL_API int rill_net_format_error(const rill_net_conn *conn, const char *op, int err, char *buf,
                                   size_t size);

#ifdef __cplusplus
}
#endif

#endif /* RILL_BLOCKING_H */
