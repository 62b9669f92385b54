/** @file
 * rill — TCP and Unix sockets on the base (callback API).
 *
 * Sockets behave as Go's net package does (docs/go-model.md):
 * created non-blocking and close-on-exec, TCP_NODELAY and 15 s keep-alive by
 * default, connect completed through SO_ERROR and confirmed with
 * getpeername(), never a SIGPIPE, and Go's error texts.
 *
 * Addresses are Go's: "host:port", ":port" (every local address for a
 * listener; this host over IPv4 for a dial, 127.0.0.1, or ::1 for "tcp6",
 * as Go dials it: G30),
 * "127.0.0.1:" or "[::1]:0" (the kernel picks the port), "[fe80::1%lo]:80";
 * networks "tcp", "tcp4", "tcp6" and "unix" (a path, or "@name" for Linux's
 * abstract namespace). rill_listen() needs a numeric host; rill_dial()
 * resolves names on the base (rill/dns.h) and tries every address, Happy
 * Eyeballs style (G11). Built without c-ares, a name gives RILL_ENEEDDNS.
 *
 * Lifetimes: a connection belongs to the user from the accept or dial
 * callback on until its close callback, which runs exactly once; after it
 * returns the handle is gone. Between rill_conn_close() and that callback
 * every call on the connection returns RILL_ECLOSED (rill_conn_abort()
 * excepted, see there). No callback runs inside the call that caused it:
 * writes, closes and dials that finish at once still report from the loop.
 *
 * Any handle may be closed, aborted or cancelled from inside any callback,
 * its own included, and a handle's own pointer stays valid until the
 * callback running returns: the close or cancel takes effect, and no
 * further callback of that handle runs except the one its close promises
 * (on_close; a dial's or lookup's one completion).
 *
 * Work a callback queues again from inside itself (a redial after a dial
 * failed at once, rill_conn_read_start() from on_read) runs in a later pass
 * of the loop, never in a loop inside rill: timers and other descriptors
 * keep their turn.
 *
 * Bad arguments: a NULL handle, or a NULL pointer where one is required,
 * gives RILL_EINVAL (never a crash); functions that return a count give 0,
 * those that return a pointer NULL, and void ones do nothing. A buffer too
 * small for an address is RILL_EINVAL; the error formatters truncate as
 * snprintf does (rill_format_op_error). */
#ifndef RILL_NET_H
#define RILL_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "rill/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A listener: see rill_listen(). */
typedef struct rill_listener rill_listener;
/** A connection: see rill_conn_start(). */
typedef struct rill_conn rill_conn;
/** A dial in flight: see rill_dial(). */
typedef struct rill_dialer rill_dialer;

/* ---- addresses (G6) ---------------------------------------------------- */

/** Room for any formatted address, a Unix path included. */
#define RILL_ADDRSTRLEN 128

/** Parses `address` for `network` into a socket address. A host that is not
 * a number gives RILL_ENEEDDNS; an empty host gives the wildcard address
 * (for "tcp", the IPv6 one when `network` allows both families). An IPv6
 * zone is an interface name or a decimal index of at most 4294967295,
 * digits only ("[fe80::1%lo]:80", "[fe80::1%2]:80"). Malformed input gets
 * Go's distinction (rill/error.h): RILL_EADDR_NOPORT ("1.2.3.4", "[::1]"),
 * RILL_EADDR_COLONS ("::1:80"), RILL_EADDR_NOBRACKET ("[::1:80"),
 * RILL_EADDR_OPENBRACKET / RILL_EADDR_CLOSEBRACKET ("a[b:80", "a]b:80"),
 * RILL_EADDR_PORT (above 65535, or signed), RILL_EADDR_SERVICE (a port that
 * is not a number), RILL_EADDR_MISSING (""), RILL_EADDR_FAMILY (an address
 * of the wrong family: "tcp4" with "[::1]:1"), RILL_EUNKNOWN_NETWORK;
 * RILL_EINVAL for NULL arguments and what else is malformed (a zone such as
 * "%-1", "%+7", "% 7" or "%4294967297", brackets around an IPv4 address, an
 * over-long host). rill_format_net_error() words them as Go does. */
RILL_API int rill_addr_parse(const char *network, const char *address,
                             struct sockaddr_storage *out, socklen_t *out_len);

/** Formats a socket address Go's way ("127.0.0.1:80", "[::1]:80",
 * "[fe80::1%lo]:80", a Unix path, "@name" for an abstract one). Reads no more
 * than `len` bytes of `sa`. Returns the length, RILL_EINVAL (NULL `sa` or
 * `buf`, `size` 0, `buf` too small, or `len` shorter than the family's
 * structure: sockaddr_in, sockaddr_in6, or sockaddr_un up to sun_path) or
 * RILL_EAFNOSUPPORT (another family). */
RILL_API int rill_addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);

/* ---- options ---------------------------------------------------------- */

/** Runs after socket() and before bind()/connect() (Go's Control hook). A
 * negative return aborts the operation with that code; the socket is closed. */
typedef int (*rill_control_cb)(int fd, const char *network, const char *address, void *arg);

/** Options for rill_listen() and rill_dial(). Zero-initialise and set what you
 * need; zero means Go's default. Tri-state fields: 0 default, 1 on, -1 off. */
typedef struct rill_socket_config {
  int no_delay;              /**< TCP_NODELAY, default on */
  int keep_alive;            /**< SO_KEEPALIVE, default on */
  uint64_t keep_alive_period; /**< idle and interval in ns, default 15 s,
                                 rounded up to whole seconds */
  uint64_t timeout;          /**< dial: lookup + connect timeout in ns, 0 none */
  const char *local_address; /**< dial: bind to this address first */
  int backlog;               /**< listen: 0 reads /proc/sys/net/core/somaxconn */
  int reuse_port;            /**< listen: SO_REUSEPORT (many bases, one port) */
  int unlink_stale;          /**< listen unix: remove a socket file nobody
                                serves (a connect to it is refused); when
                                that cannot be checked (-EMFILE for the
                                probe, say), that error, the file stays */
  size_t read_max;           /**< bytes a connection may hold unconsumed,
                                default 64 KiB (G27); these three count
                                as 4 GiB - 1 when larger */
  size_t write_high_water;   /**< queued bytes that fire on_high_water, 1 MiB */
  size_t write_low_water;    /**< queued bytes that fire on_low_water, 0 */
  rill_control_cb control;   /**< NULL: none */
  void *control_arg;         /**< `control`'s `arg` */
  /** dial by name: resolver settings for this dial (NULL: the base's) */
  const struct rill_dns_config *dns;
  /** dial by name: Happy Eyeballs delay before the next address is tried
   * while the previous one is still connecting, in ns; 0: 300 ms */
  uint64_t fallback_delay;
} rill_socket_config;

/* ---- connections ------------------------------------------------------- */

/** What a connection reports. Every member may be NULL. */
typedef struct rill_conn_events {
  /** Input. status 0: `len` (> 0) bytes arrived; return how many were used.
   * Unused bytes stay with the connection and come first next time; once
   * read_max bytes are held unused, reading pauses (the peer is held back by
   * TCP) until rill_conn_read_start(), which delivers them again. So does a
   * rill_conn_read_start() that on_read itself makes after
   * rill_conn_read_stop(): the bytes it leaves come again at once, without
   * waiting for new input.
   * status RILL_EOF: the peer closed its side; `data` holds what is still
   * unused. Any other negative status is a read error (-ECONNRESET ...). EOF
   * and errors come once, then reading stops; the return value is ignored.
   * status RILL_ETIMEOUT: the read deadline passed; reading pauses, nothing
   * is lost, and setting a new deadline resumes it.
   * status RILL_ENOMEM: bytes left unused could not be kept (out of memory);
   * they are lost and reading stops. If on_read was removed meanwhile
   * (rill_conn_start() with a table without it), the next rill_conn_start()
   * that sets one delivers this report. */
  size_t (*on_read)(rill_conn *conn, const char *data, size_t len, int status, void *arg);
  /** The write queue became empty: everything reached the kernel. Only
   * writes that had to queue lead here; one the kernel takes whole at once
   * reports nothing. */
  void (*on_drain)(rill_conn *conn, void *arg);
  /** Queued bytes rose above write_high_water / fell to write_low_water. @{ */
  void (*on_high_water)(rill_conn *conn, size_t queued, void *arg);
  void (*on_low_water)(rill_conn *conn, size_t queued, void *arg);
  /** @} */
  /** Writing failed: RILL_ETIMEOUT (the write deadline passed; after a new
   * deadline the connection writes again), -EPIPE or -ECONNRESET (the peer
   * is gone; later writes fail the same way). What was queued is dropped;
   * `unsent` bytes never reached the kernel, rill_conn_bytes_written() says
   * how many did. */
  void (*on_write_error)(rill_conn *conn, int err, size_t unsent, void *arg);
  /** Exactly once, after rill_conn_close()/rill_conn_abort(); the handle is
   * freed when this returns. */
  void (*on_close)(rill_conn *conn, void *arg);
} rill_conn_events;

/** Sets what the connection reports and starts reading (if on_read is set).
 * May be called again to change the callbacks. The table is copied (it may
 * live on the caller's stack); connections started with equal tables share
 * the base's one copy. RILL_ENOMEM when a table unlike any before cannot be
 * copied: the connection keeps its callbacks. */
RILL_API int rill_conn_start(rill_conn *conn, const rill_conn_events *events, void *arg);

/** Adopts a connected stream socket (made non-blocking and close-on-exec; TCP
 * sockets get the default options). The connection owns `fd` from now on. */
RILL_API int rill_conn_from_fd(rill_base *base, int fd, rill_conn **out);

/** Pauses / resumes reading (back-pressure). @{ */
RILL_API int rill_conn_read_stop(rill_conn *conn);
RILL_API int rill_conn_read_start(rill_conn *conn);
/** @} */

/** Writes `len` bytes: straight to the kernel when nothing is queued, and
 * what the kernel does not take is copied into the queue. Returns 0, or an
 * error the write met at once (RILL_ECLOSED, -EPIPE, RILL_ETIMEOUT when the
 * write deadline has passed, RILL_ENOMEM). RILL_ENOMEM may come after part of
 * the data went to the kernel: rill_conn_bytes_written() says how much. A
 * zero-length write is a no-op. */
RILL_API int rill_conn_write(rill_conn *conn, const void *data, size_t len);

/** Called once per rill_conn_write_ref(), from the loop: status 0 when every
 * byte reached the kernel, else the error and how many bytes did. */
typedef void (*rill_write_cb)(rill_conn *conn, int status, size_t written, void *arg);

/** Zero-copy write: `data` must stay valid until `done` runs. Completions
 * come in the order of the writes; one of zero bytes completes once every
 * earlier write has (a marker for "all written so far reached the kernel"). */
RILL_API int rill_conn_write_ref(rill_conn *conn, const void *data, size_t len,
                                 rill_write_cb done, void *arg);

/** Writes what the kernel takes now, straight from `data`, and nothing
 * more: no copy, no queue, no callback (libuv's uv_try_write). Returns how
 * many bytes the kernel took, possibly 0 (its buffer is full, or earlier
 * writes are still queued: they go first, so nothing is taken), or the error
 * rill_conn_write would give at once (RILL_ECLOSED, -EPIPE, -ECONNRESET,
 * RILL_ETIMEOUT, RILL_EINVAL for NULL data). `data` is not used after the
 * call returns. To wait for room, queue the rest with rill_conn_write_ref(),
 * which completes once the kernel took it. */
RILL_API ssize_t rill_conn_try_write(rill_conn *conn, const void *data, size_t len);

/** Bytes queued and not yet taken by the kernel. */
RILL_API size_t rill_conn_write_queued(const rill_conn *conn);

/** Bytes the kernel has taken since the connection opened. */
RILL_API uint64_t rill_conn_bytes_written(const rill_conn *conn);

/** Bytes read from the kernel since the connection opened: those shown to
 * on_read, those it left unused and still holds included (0 for NULL).
 * A rill_pipe's splice(2) counts here too. */
RILL_API uint64_t rill_conn_bytes_read(const rill_conn *conn);

enum {
  RILL_DEADLINE_READ = 1,
  RILL_DEADLINE_WRITE = 2,
  RILL_DEADLINE_BOTH = 3
};

/** Sets the read and/or write deadline to `when`, a time on the
 * rill_time_now() clock in nanoseconds (0: none; a time already past fails
 * the next I/O at once). Passed deadlines fail I/O with RILL_ETIMEOUT until moved.
 * Cheap enough to call on every read or write. */
RILL_API int rill_conn_set_deadline(rill_conn *conn, int which, uint64_t when);

/** Half-close: once the queue is flushed, shuts the write side (FIN). The
 * peer reads EOF; this side can still read. Later writes give -EPIPE. */
RILL_API int rill_conn_close_write(rill_conn *conn);

/** Ending a TCP connection. A socket closed while received input is still
 * unread makes the kernel reset the connection (RST) instead of sending
 * FIN, and the reset drops what the kernel had taken but not yet sent: the
 * peer may miss the last bytes and read ECONNRESET instead of EOF. Go's
 * Close on a TCPConn and close(2) behave this way too.
 *
 * Graceful close: stops reading, flushes what is queued (bounded by the
 * write deadline), throws away input that arrived and was not read, then
 * closes with FIN; then on_close. The peer reads every byte written and
 * then EOF — unless it sends more after the close, which the kernel answers
 * with RST. For a clean end when the peer may still be sending, do what a
 * careful Go or libuv program does: rill_conn_close_write() (FIN after the
 * queue), keep reading until on_read reports RILL_EOF, then close. */
RILL_API int rill_conn_close(rill_conn *conn);

/** Close at once, as Go's Close does: what is still queued is dropped (ref
 * writes complete with RILL_ECANCELED) and the socket is closed; then
 * on_close. Without unread input, what the kernel already took is still
 * delivered, then FIN. With unread input (bytes the kernel received that
 * were never read; bytes on_read left unused do not count) the kernel
 * resets the connection: RST, and what it had not yet sent is lost. */
RILL_API int rill_conn_close_now(rill_conn *conn);

/** Abortive close: drops the queue and resets the connection (RST, via
 * SO_LINGER 0), then on_close. Allowed during a graceful close too, to give
 * up on the flush; RILL_ECLOSED once the socket is closed (a graceful close
 * with nothing left to flush closes it at once). */
RILL_API int rill_conn_abort(rill_conn *conn);

/** Option setters (G4), Go's TCPConn.Set*. RILL_ECLOSED once closed;
 * -EOPNOTSUPP for a TCP option on a Unix socket. @{ */
RILL_API int rill_conn_set_no_delay(rill_conn *conn, int on);
/** `period` in ns (rounded up to whole seconds; 0: 15 s). */
RILL_API int rill_conn_set_keep_alive(rill_conn *conn, int on, uint64_t period);
RILL_API int rill_conn_set_linger(rill_conn *conn, int seconds); /**< < 0: off */
RILL_API int rill_conn_set_read_buffer(rill_conn *conn, int bytes);
RILL_API int rill_conn_set_write_buffer(rill_conn *conn, int bytes);
/** @} */

/** The socket; RILL_ECLOSED once closed. */
RILL_API int rill_conn_fd(const rill_conn *conn);
/** The base the connection is on. */
RILL_API rill_base *rill_conn_base(const rill_conn *conn);
/** "tcp" or "unix". */
RILL_API const char *rill_conn_network(const rill_conn *conn);
/** Formatted addresses; the length, or a negative code. @{ */
RILL_API int rill_conn_local_addr(const rill_conn *conn, char *buf, size_t size);
RILL_API int rill_conn_remote_addr(const rill_conn *conn, char *buf, size_t size);
/** @} */

/** Formats an error met on the connection Go's way (G31):
 * "read tcp 127.0.0.1:5000->127.0.0.1:7000: i/o timeout". `op` names the
 * call that failed: "read", "write", "close", "close_write" (printed
 * "close"), or a setter: "set_no_delay", "set_keep_alive", "set_linger"
 * (and plain "set") print "set" with both addresses, "set_deadline",
 * "set_read_buffer" and "set_write_buffer" print "set" with the local
 * address only — each as Go's method of that name does. RILL_EOF gives
 * "EOF" alone, as Go's io.EOF. Returns as rill_format_op_error() does. */
RILL_API int rill_conn_format_error(const rill_conn *conn, const char *op, int err, char *buf,
                                    size_t size);

/* ---- listeners --------------------------------------------------------- */

/** A new connection (status 0), or an accept error (status < 0, conn NULL)
 * after which the listener keeps running: -EMFILE/-ENFILE pause accepting
 * for a short back-off, then it accepts again. Call rill_conn_start() on the
 * connection to read from it, or close it. */
typedef void (*rill_accept_cb)(rill_listener *listener, rill_conn *conn, int status, void *arg);

/** Listens on `address` and accepts until closed. `options` may be NULL.
 * An empty TCP address is ":0", as Go's Listen("tcp", "") is. Errors are
 * worded Go's way by rill_format_net_error(..., "listen", ...).
 * RILL_EINVAL for a NULL `base`, `address`, `on_accept` or `out`. A Unix
 * listener that fails after creating its socket file removes that file
 * (never one it did not create). */
RILL_API int rill_listen(rill_base *base, const char *network, const char *address,
                         const rill_socket_config *options, rill_accept_cb on_accept, void *arg,
                         rill_listener **out);

/** Formats an error met on the listener Go's way (G31): `op` "accept"
 * ("accept tcp 127.0.0.1:8080: accept4: too many open files"), "close" or
 * "set_deadline" ("set tcp 127.0.0.1:8080: ..."). Returns as
 * rill_format_op_error() does; RILL_EINVAL for a NULL `listener` or `op`. */
RILL_API int rill_listener_format_error(const rill_listener *listener, const char *op, int err,
                                        char *buf, size_t size);

/** The bound address, with the kernel's port for port 0. */
RILL_API int rill_listener_addr(const rill_listener *listener, char *buf, size_t size);
/** The bound TCP port (0 for a Unix listener); RILL_ECLOSED once closed. */
RILL_API int rill_listener_port(const rill_listener *listener);
/** The listening socket; RILL_ECLOSED once closed. */
RILL_API int rill_listener_fd(const rill_listener *listener);

/** Stops / resumes accepting (connections wait in the kernel's backlog
 * meanwhile). RILL_ECLOSED once closed. @{ */
RILL_API int rill_listener_stop(rill_listener *listener);
RILL_API int rill_listener_start(rill_listener *listener);
/** @} */

/** Stops accepting and closes the socket (a Unix socket's file is removed).
 * No callback follows, not even for connections the kernel had queued. The
 * handle is gone when this returns — or, called inside its own on_accept,
 * when that returns; until then the other listener calls return
 * RILL_ECLOSED. */
RILL_API void rill_listener_free(rill_listener *listener);

/* ---- dialing ----------------------------------------------------------- */

/** Exactly once per rill_dial(): the connection (status 0), or an error:
 * -ECONNREFUSED, RILL_ETIMEOUT (options.timeout), RILL_ECANCELED
 * (rill_dialer_cancel), ... The dialer handle is gone when this returns;
 * rill_dialer_format_error() may be called inside it. */
typedef void (*rill_dial_cb)(rill_dialer *dialer, rill_conn *conn, int status, void *arg);

/** Connects to `address`. `options` may be NULL. *out (may be NULL) gets a
 * handle for rill_dialer_cancel(), valid until the callback returns. Errors
 * met at once (a malformed address, say) are returned and no callback
 * follows; rill_format_net_error() words them as Go does. */
RILL_API int rill_dial(rill_base *base, const char *network, const char *address,
                       const rill_socket_config *options, rill_dial_cb on_done, void *arg,
                       rill_dialer **out);

/** Cancels a dial whose callback has not run yet: it then runs with
 * RILL_ECANCELED, from the loop — also when the connection was made but not
 * yet reported (it is closed; the user never sees it). A dial that already
 * failed keeps its error. May be called from any callback, another dial's
 * or a lookup's included; RILL_ECLOSED from inside the dial's own callback. */
RILL_API int rill_dialer_cancel(rill_dialer *dialer);

/** Formats the dial's error Go's way:
 * "dial tcp 127.0.0.1:1: connect: connection refused". Returns as
 * rill_format_op_error() does; RILL_EINVAL for a NULL `dialer`. */
RILL_API int rill_dialer_format_error(const rill_dialer *dialer, int err, char *buf, size_t size);

/** Formats an error rill_dial() or rill_listen() returned (G31), given
 * what they were called with: `op` is "dial" or "listen". Go's texts:
 *   "dial tcp: address 1.2.3.4: missing port in address" (RILL_EADDR_*),
 *   "dial tcp: missing address", "dial tcp7: unknown network tcp7",
 *   "listen tcp 127.0.0.1:80: bind: address already in use",
 *   "listen unix /tmp/s: bind: address already in use",
 *   "dial tcp: lookup bad..name: invalid host name" (a DNS code).
 * The address shows as Go shows the one it resolved (":80" for every local
 * address, "127.0.0.1:80" for "127.0.0.1:080"). For an operating-system
 * code the call Go names is the one such a code comes from: "socket" for
 * -EMFILE, -ENFILE, -ENOBUFS, -EAFNOSUPPORT and -EPROTONOSUPPORT, otherwise
 * "bind" for listen and "connect" for dial; none for RILL_ENOMEM and rill's
 * own codes. Returns as rill_format_op_error() does; RILL_EINVAL for a NULL
 * `op`, `network` or `address`. */
RILL_API int rill_format_net_error(const char *op, const char *network, const char *address, int err,
                                   char *buf, size_t size);

/** The general form: "<op> <network> [<local>-><remote>|<remote>]: [<call>: ]<text>";
 * an empty `network` is left out ("dial: unknown network "), and RILL_EOF
 * gives "EOF" alone (Go's io.EOF is never wrapped).
 * `local`, `remote` and `call` may be NULL. Behaves as snprintf: never
 * writes past `size`, always NUL-terminates when `size` > 0 (truncating),
 * and returns the length of the whole text, so a result >= `size` means it
 * was cut short. `buf` may be NULL only with `size` 0, to measure.
 * RILL_EINVAL for a NULL `op` or `network`, or a NULL `buf` with `size` > 0. */
RILL_API int rill_format_op_error(const char *op, const char *network, const char *local,
                                  const char *remote, const char *call, int err, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* RILL_NET_H */
