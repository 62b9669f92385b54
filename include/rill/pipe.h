/** @file
 * rill — joining two connections: the proxy every daemon writes.
 *
 * Callback API: rill_pipe_start() joins two connections, `a` and `b`: what
 * `a` sends goes to `b` and what `b` sends goes to `a`, with back-pressure
 * and half-closes carried across, until both directions have ended (or one
 * failed). Blocking facade: rill_net_copy() is Go's io.Copy between two
 * rill_net_conn. docs/proxying.md shows both at work.
 *
 * How a pipe moves bytes, per direction (a to b, say):
 *
 *  - Back-pressure: reading `a` pauses while `b` cannot keep up. With copies
 *    (see below) that is `b`'s write queue above its write_high_water (the
 *    rill_socket_config of the listen or dial that made `b`; 1 MiB by
 *    default) until it falls to write_low_water; with splice(2) it is the
 *    kernel pipe between them being full. Either way a peer that does not
 *    read holds the other peer back through TCP, and the pipe's memory
 *    stays bounded.
 *  - Half-close: EOF read from `a` becomes rill_conn_close_write(b) once
 *    every byte before it reached `b`'s kernel: `b`'s peer reads EOF and the
 *    other direction goes on until it ends the same way.
 *  - splice(2): on Linux, when nothing is buffered on either connection
 *    (no bytes left unused by an earlier on_read, no write queued) the pipe
 *    moves bytes socket to kernel pipe to socket, never through user space;
 *    otherwise, elsewhere, or with options.splice -1, it reads into the
 *    base's read buffer and writes with rill_conn_write(). The choice is made
 *    once, at start, for both directions; rill_pipe_spliced() tells it. A
 *    spliced pipe holds two kernel pipes (four descriptors); if they cannot
 *    be made (-EMFILE, say) the pipe copies instead.
 *
 * Lifetimes (core/lifetime.h's protocol, as a dial's): the pipe takes both
 * connections over, their events included — do not call rill_conn_start(),
 * read_stop/start, write or close_write on them while it runs. It clears
 * their deadlines (options.idle_timeout bounds an idle pipe instead). The
 * pipe handle is valid from rill_pipe_start() until its on_done callback
 * returns, which runs exactly once, from the loop, never inside a rill call.
 * At the end, by default, the pipe closes both connections and on_done runs
 * after both close (their handles are gone by then, every descriptor
 * closed): gracefully after a clean end; after an error the connection that
 * failed is closed at once and the other one reset (rill_conn_abort), so its
 * peer learns the stream was cut short rather than reading a clean EOF;
 * after rill_pipe_cancel() both are closed at once (rill_conn_close_now).
 * With options.keep_open the pipe closes nothing: on_done hands both
 * connections back, open, with no events and reading stopped (whatever is
 * still queued on them keeps going out); call rill_conn_start() or close
 * them, as with a connection fresh from accept.
 *
 * Closing one of the connections while the pipe runs (a shutdown that
 * walks every connection, say) ends the pipe with RILL_ECLOSED on that side
 * and closes the other as after an error.
 *
 * Bad arguments are RILL_EINVAL (NULL handles, a connection joined to
 * itself or already in a pipe, connections of different bases). */
#ifndef RILL_PIPE_H
#define RILL_PIPE_H

#include <stddef.h>
#include <stdint.h>

#include "rill/blocking.h"
#include "rill/net.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A pipe between two connections: see the top of this file. */
typedef struct rill_pipe rill_pipe;

/** Options for rill_pipe_start(); zero-initialise, zero means the default. */
typedef struct rill_pipe_options {
  /** 0: splice(2) when the platform and both connections allow it; -1 never
   * (always read and write through user space). */
  int splice;
  /** 0: the pipe closes both connections at the end; 1: on_done hands them
   * back open (see above). */
  int keep_open;
  /** End the pipe with RILL_ETIMEOUT once no byte moved either way for this
   * long, in ns (checked with the base's clock, to a few ms); 0: never. */
  uint64_t idle_timeout;
} rill_pipe_options;

/** Which connection an error came from (rill_pipe_result.side). */
enum rill_pipe_side {
  RILL_PIPE_SIDE_NONE = -1, /**< no error, or one of the pipe's own */
  RILL_PIPE_SIDE_A = 0,     /**< connection `a` */
  RILL_PIPE_SIDE_B = 1      /**< connection `b` */
};

/** How a pipe ended, given to on_done. */
typedef struct rill_pipe_result {
  /** 0: both directions reached EOF and every byte reached the kernel on the
   * other side. Otherwise the first error: a read or write error of one
   * connection (-ECONNRESET, -EPIPE, ...), RILL_ECLOSED (one was closed
   * under the pipe), RILL_ECANCELED (rill_pipe_cancel), RILL_ETIMEOUT
   * (options.idle_timeout), RILL_ENOMEM. */
  int status;
  /** RILL_PIPE_SIDE_A or _B for a connection's error, else _NONE. */
  int side;
  /** "read" or "write" for a connection's error, else NULL. */
  const char *op;
  /** The error in Go's words, "read tcp 127.0.0.1:7000->127.0.0.1:41234:
   * connection reset by peer", formatted while the connection lived (it is
   * gone in on_done unless keep_open); "" for status 0. */
  const char *message;
  /** Bytes from `a` that reached `b`'s kernel. */
  uint64_t a_to_b;
  /** Bytes from `b` that reached `a`'s kernel. */
  uint64_t b_to_a;
  /** With keep_open: connection `a`, handed back; otherwise NULL. */
  rill_conn *a;
  /** With keep_open: connection `b`, handed back; otherwise NULL. */
  rill_conn *b;
} rill_pipe_result;

/** Exactly once per rill_pipe_start() that returned 0, from the loop. The
 * handle and `result` are gone when it returns. */
typedef void (*rill_pipe_cb)(rill_pipe *pipe, const rill_pipe_result *result, void *arg);

/** Joins `a` and `b` (see above). `options` may be NULL; `out` may be NULL.
 * Returns 0, or an error and changes nothing: RILL_EINVAL (bad arguments,
 * see above), RILL_ECLOSED (a connection is closing), -EPIPE (a write side
 * is already shut or failed: nothing could go that way), RILL_ENOMEM. A
 * connection that already reported EOF starts its direction finished (the
 * other connection's write side is shut at once). Bytes a connection held
 * unused, and writes already queued, go first, in order. */
RILL_API int rill_pipe_start(rill_conn *a, rill_conn *b, const rill_pipe_options *options,
                             rill_pipe_cb on_done, void *arg, rill_pipe **out);

/** Ends the pipe: on_done follows from the loop with RILL_ECANCELED (unless
 * the pipe had already ended and only its report is waiting: that keeps its
 * status). RILL_ECLOSED from inside on_done, RILL_EINVAL for NULL. */
RILL_API int rill_pipe_cancel(rill_pipe *pipe);

/** Bytes moved so far each way (reached the other kernel); either pointer
 * may be NULL. RILL_EINVAL for a NULL pipe. */
RILL_API int rill_pipe_bytes(const rill_pipe *pipe, uint64_t *a_to_b, uint64_t *b_to_a);

/** 1 if the pipe moves bytes with splice(2), 0 if through user space,
 * RILL_EINVAL for NULL. */
RILL_API int rill_pipe_spliced(const rill_pipe *pipe);

/* ---- blocking facade ---------------------------------------------------- */

/** Go's io.Copy(dst, src): reads `src` and writes `dst` until `src` reports
 * EOF, then returns 0 (EOF is not an error). Otherwise the first error:
 * reading `src` (RILL_ETIMEOUT past its read deadline, -ECONNRESET, ...) or
 * writing `dst` (RILL_ETIMEOUT past its write deadline, -EPIPE, ...),
 * RILL_ECLOSED after a close of either, RILL_ENOTFIBER outside a fiber,
 * RILL_EINVAL for NULL or `dst` == `src`, RILL_ENOMEM. `*written` (may be NULL) gets
 * the bytes that reached `dst`'s kernel, also on error. Parks while `src`
 * is idle or `dst`'s peer is slow (each write completes before the next
 * read: back-pressure as in Go); other fibers keep running, and may read
 * `dst` or write `src` meanwhile (the other direction). `dst` is not
 * half-closed at the end: call rill_net_close_write(dst) for that, as Go
 * programs do. Bytes pass through one buffer of 32 KiB, allocated for the
 * call. */
RILL_API int rill_net_copy(rill_net_conn *dst, rill_net_conn *src, uint64_t *written);

#ifdef __cplusplus
}
#endif

#endif /* RILL_PIPE_H */
