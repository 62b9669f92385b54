// A TLS connection's record pump: the BIO OpenSSL reads and writes the
// socket through, and the transport the connection's read and write paths
// call instead of the socket (tls_impl.h has the picture).
//
// Why a BIO of our own rather than memory BIOs: a memory BIO copies every
// record once more (OpenSSL's buffer into the BIO, the BIO into the
// kernel). Ours sends OpenSSL's buffer straight to the kernel and reads
// the kernel straight into OpenSSL's; it copies only the tail of a record
// the kernel refused, and it accepts that tail so that SSL_write always
// completes and never has to be retried with the same arguments.
//
// Why input cannot strand: OpenSSL reads ahead (as much of the socket as
// its buffer takes in one recv(), not a record header and then its body),
// so it may hold whole records the socket no longer signals: the plaintext
// of a record larger than the room a read had, records behind the one a
// read stopped at, a client's first message that came with its Finished.
// A read goes on while OpenSSL holds bytes (SSL_has_pending) and room is
// left, and stops there rather than meeting EAGAIN: the socket says when
// more comes. What it leaves, unless OpenSSL is only waiting for the rest of
// a record (`starved`), is read by a one-shot timer (the kick), also armed
// when reading resumes after a pause.
//
// The session ticket: a TLS 1.3 server writes its ticket as soon as the
// client's Finished is read, a record and a segment of its own. When the
// client's first request came with that Finished (OpenSSL holds it), the
// ticket waits in `out` for the reply to it, and the two leave in one
// send(): a system call and a segment fewer per handshake (Go's server
// saves the same by sending its ticket with its own Finished). If no reply
// took the ticket when the kick that reads that request is done, the
// pending queue sends it, after any fiber that read woke (its reply may
// still take it); a close's close_notify takes it along too.
#include <openssl/err.h>
#include <sys/socket.h>
#include <cerrno>
#include <cstring>

#include "core/alloc.h"
#include "core/pending.h"
#include "tls/tls_impl.h"

namespace rill::detail {
namespace {

constexpr size_t record_max = 16384;  // plaintext per record

tls_conn *bio_conn(BIO *b) { return static_cast<tls_conn *>(BIO_get_data(b)); }

// A client's first record is a handshake one: anything else (an HTTP
// request, say) is a plaintext client on a TLS port. A server may answer
// with an alert instead.
void note_first(tls_conn *t, const char *p, size_t n) {
  if (t->seen_first || !n)
    return;
  t->seen_first = true;
  t->not_tls = t->server && static_cast<unsigned char>(p[0]) != 0x16;
}

int bio_read(BIO *b, char *buf, int len) {
  tls_conn *t = bio_conn(b);
  BIO_clear_retry_flags(b);
  ssize_t n;
  do {
    n = recv(t->c->fd, buf, static_cast<size_t>(len), 0);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    note_first(t, buf, static_cast<size_t>(n));
    return static_cast<int>(n);
  }
  if (n == 0) {
    t->eof = true;
    return 0;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    BIO_set_retry_read(b);
    return -1;
  }
  t->sys_err = errno;
  return -1;
}

bool append_out(tls_conn *t, const char *data, size_t len) {
  if (t->out_off == t->out_len)
    t->out_off = t->out_len = 0;
  if (t->out_len + len > t->out_cap) {
    size_t cap = t->out_len + len;
    if (cap < 2 * t->out_cap)
      cap = 2 * t->out_cap;
    char *p = static_cast<char *>(mem_realloc(t->out, cap));
    if (!p)
      return false;
    t->out = p;
    t->out_cap = cap;
  }
  std::memcpy(t->out + t->out_len, data, len);
  t->out_len += len;
  return true;
}

ssize_t send_all_or_some(int fd, const char *data, size_t len) {
  ssize_t n;
  do {
    n = send(fd, data, len, RILL_MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n;
}

// Whether this write is a TLS 1.3 server's session ticket that may wait for
// the reply to a request OpenSSL already holds (see the top).
bool ticket_may_wait(const tls_conn *t) {
  return !t->handshaken && t->server && SSL_get_state(t->ssl) == TLS_ST_SW_SESSION_TICKET &&
         SSL_version(t->ssl) == TLS1_3_VERSION && SSL_has_pending(t->ssl);
}

int bio_write(BIO *b, const char *data, int len) {
  tls_conn *t = bio_conn(b);
  BIO_clear_retry_flags(b);
  size_t size = static_cast<size_t>(len);
  size_t sent = 0;
  if (ticket_may_wait(t)) {
    if (!append_out(t, data, size)) {
      t->sys_err = ENOMEM;
      return -1;
    }
    t->ticket_held = true;
    return len;
  }
  if (!tls_out_pending(t)) {
    ssize_t n = send_all_or_some(t->c->fd, data, size);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      t->sys_err = errno;
      return -1;
    }
    sent = n > 0 ? static_cast<size_t>(n) : 0;
  }
  if (sent < size && !append_out(t, data + sent, size - sent)) {
    t->sys_err = ENOMEM;
    return -1;
  }
  return len;
}

long bio_ctrl(BIO *, int cmd, long, void *) {
  // OpenSSL flushes after each flight; ours go out as they are written.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

BIO_METHOD *make_method() {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "rill conn");
  if (!m)
    return nullptr;
  BIO_meth_set_read(m, bio_read);
  BIO_meth_set_write(m, bio_write);
  BIO_meth_set_ctrl(m, bio_ctrl);
  return m;
}

// The FIN, once: tls_shutdown_write may run again when the write side
// gives up after it.
int send_fin(tls_conn *t) {
  t->fin_wanted = false;
  if (t->fin_sent)
    return 0;
  t->fin_sent = true;
  return shutdown(t->c->fd, SHUT_WR);
}

// An error for errno: the transport's callers read -errno, so rill's own
// codes travel negated.
ssize_t fail(int err) {
  errno = -err;
  return -1;
}

void flush_held_ticket(pending_node *node) {
  tls_conn *t = RILL_CONTAINER_OF(node, tls_conn, ticket_flush);
  if (!t->ticket_held || conn_fd_closed(t->c))
    return;
  tls_flush_out(t);
  conn_update_io(t->c);  // what the kernel did not take waits for writability
}

void on_timer(rill_timer *, void *arg) {
  tls_conn *t = static_cast<tls_conn *>(arg);
  if (t->done) {
    tls_handshake_expired(t);
    return;
  }
  rill_conn *c = t->c;
  conn_held hold(c);
  // No reply took the ticket along: it goes from the pending queue, behind
  // a fiber this read woke, whose reply may still take it. Queued on the
  // way out, so an on_read that throws does not strand it; before `hold`
  // lets the connection (and `t`) go.
  struct queue_held_ticket {
    tls_conn *t;
    ~queue_held_ticket() {
      if (t->ticket_held) {
        t->ticket_flush.run = flush_held_ticket;
        pending_push(t->c->base, &t->ticket_flush);
      }
    }
  } queue_ticket{t};
  if (c->lifetime.open() && !conn_fd_closed(c))
    conn_on_readable(c);
}

// Reads again from the loop: plaintext OpenSSL holds (unless it only waits
// for the rest of a record: `starved`), or an end (EOF, error) met after the
// bytes returned with it: the socket may never signal either again.
void arm_kick(tls_conn *t) {
  if (!t->read_err && (t->starved || !SSL_has_pending(t->ssl)))
    return;
  if (tls_timer_make(t) < 0)
    return;  // out of memory: the next input reads it
  if (!rill_timer_active(t->timer))
    rill_timer_start(t->timer, 0, 0);
}

ssize_t tls_readv(rill_conn *c, const iovec *iov, int count) {
  tls_conn *t = tls_of(c);
  if (t->read_err == RILL_EOF)
    return 0;  // the close_notify met after data (kept below)
  if (t->read_err)
    return fail(t->read_err);
  size_t total = 0;
  int err = 0;
  for (int i = 0; i < count && !err; i++) {
    char *p = static_cast<char *>(iov[i].iov_base);
    size_t room = iov[i].iov_len;
    // After the first record, only what OpenSSL already holds: asking the
    // socket again would cost a recv() that meets EAGAIN on every message.
    while (room && (!total || SSL_has_pending(t->ssl))) {
      size_t got = 0;
      tls_clear_stale_errors();  // for SSL_get_error below
      int ret = SSL_read_ex(t->ssl, p, room, &got);
      if (ret == 1) {
        p += got;
        room -= got;
        total += got;
        continue;
      }
      int e = SSL_get_error(t->ssl, ret);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        err = EAGAIN;
      else if (e == SSL_ERROR_ZERO_RETURN)
        err = RILL_EOF;  // the peer's close_notify
      else
        err = tls_map_error(t, ret);
      break;
    }
    if (room && !err)
      break;  // OpenSSL holds nothing more
  }
  t->starved = err == EAGAIN;
  // Whatever the peer sent after the request (OpenSSL's client answers the
  // refusal with a fatal alert) comes after the refusal.
  if (t->refused_renegotiation) {
    err = RILL_ETLS_RENEGOTIATION;
    t->read_err = err;
  }
  // A key update or an alert OpenSSL answered while reading. A held ticket
  // waits for the reply (or the kick that runs this read), unless the read
  // failed: the alert then goes now, behind it, since a close that follows
  // sends no close_notify that would take it along.
  if (tls_out_pending(t) && (!t->ticket_held || (err && err != EAGAIN)))
    tls_flush_out(t);
  // The end met after data is returned by the next read, which the kick
  // brings: the socket has nothing more to signal.
  if (total && err && err != EAGAIN)
    t->read_err = err;
  arm_kick(t);
  if (total)
    return static_cast<ssize_t>(total);
  if (err == EAGAIN)
    return fail(-EAGAIN);
  if (err == RILL_EOF)
    return 0;  // a read of 0: the connection's read path reports RILL_EOF
  t->read_err = err;
  return fail(err);
}

ssize_t tls_writev(rill_conn *c, const iovec *iov, int count) {
  tls_conn *t = tls_of(c);
  // A held ticket goes with the first record, in one send() below.
  bool with_ticket = t->ticket_held;
  t->ticket_held = false;
  if (!with_ticket) {
    int r = tls_flush_out(t);
    if (r < 0)
      return fail(r);
    if (r == 0)
      return fail(-EAGAIN);  // the last record still waits: take nothing more
  }
  // Plaintext SSL_write_ex accepted is taken: it is encrypted, and the
  // caller (rill_conn_try_write's, say) may reuse its buffer at once. A
  // record the kernel took only part of waits in `out`, which the write
  // path flushes on writability (tls_pending) before it counts as drained.
  size_t taken = 0;
  for (int i = 0; i < count; i++) {
    const char *p = static_cast<const char *>(iov[i].iov_base);
    size_t len = iov[i].iov_len;
    while (len) {
      size_t chunk = len < record_max ? len : record_max;
      size_t done = 0;
      // No ERR_clear_error() first (it cost as much as a tenth of the
      // write): with this BIO a write fails only for good, never to be
      // retried, so a stale error could not turn a retry into a failure,
      // and rill leaves none behind (tls_map_error clears what it read).
      if (SSL_write_ex(t->ssl, p, chunk, &done) != 1) {
        int err = tls_map_error(t, 0);
        if (taken)
          return static_cast<ssize_t>(taken);
        return fail(err);
      }
      taken += chunk;
      if (with_ticket) {  // the record went behind the ticket, into `out`
        with_ticket = false;
        int r = tls_flush_out(t);
        if (r < 0)
          return fail(r);
      }
      if (tls_out_pending(t))
        return static_cast<ssize_t>(taken);  // the kernel is full
      p += chunk;
      len -= chunk;
    }
  }
  if (with_ticket) {  // nothing to write after all: the ticket goes alone
    int r = tls_flush_out(t);
    if (r < 0)
      return fail(r);
  }
  return static_cast<ssize_t>(taken);
}

// Whether the write side gave up (its deadline passed, the peer is gone,
// an abort): nothing more will be sent, and the stream must not look ended
// cleanly.
bool write_side_failed(const rill_conn *c) {
  return c->write_error || c->has(conn_flag::write_timed_out) || c->has(conn_flag::aborted);
}

void say_goodbye(tls_conn *t) {
  // In init after the handshake means OpenSSL's fatal state (an alert was
  // sent or received): SSL_shutdown would only fail there. After a failed
  // write a close_notify would tell the peer it has all the data.
  if (t->said_goodbye || !t->handshaken || SSL_in_init(t->ssl) || write_side_failed(t->c))
    return;
  t->said_goodbye = true;
  tls_clear_stale_errors();
  SSL_shutdown(t->ssl);  // close_notify into the BIO, which sends it
  tls_clear_stale_errors();  // nothing left behind for the thread's other connections
  tls_flush_out(t);
}

int tls_shutdown_write(rill_conn *c) {
  tls_conn *t = tls_of(c);
  if (write_side_failed(c)) {
    // Called again when the write side gives up with the FIN still waiting
    // (conn_fail_queue): what `out` holds will never go, and the FIN
    // follows what the kernel took, as it does on TCP. The peer reads a
    // stream cut short, not a close_notify.
    t->out_off = t->out_len = 0;
    return send_fin(t);
  }
  say_goodbye(t);
  if (tls_out_pending(t)) {
    // A FIN now would cut the records still in `out` (the close_notify at
    // least): tls_flush_out sends it once they are out.
    t->fin_wanted = true;
    return 0;
  }
  return send_fin(t);
}

bool tls_pending(const rill_conn *c) {
  const tls_conn *t = tls_of(c);
  return tls_out_pending(t) && !t->ticket_held;
}

void tls_reading(rill_conn *c) { arm_kick(tls_of(c)); }

// A graceful close: close_notify behind the data, in `out` if the kernel
// is full, and the close waits for it there (conn_transport_closing).
void tls_closing(rill_conn *c) { say_goodbye(tls_of(c)); }

void tls_end(rill_conn *c, bool goodbye) {
  tls_conn *t = tls_of(c);
  // A close that does not wait (rill_conn_close_now) sends close_notify
  // only if the kernel takes it now; a graceful close already sent it.
  if (goodbye)
    say_goodbye(t);
  if (t->timer && !t->done)  // a handshake's deadline still ends it
    rill_timer_stop(t->timer);
}

void tls_destroy(rill_conn *c) {
  tls_conn *t = tls_of(c);
  conn_set_transport(c, nullptr, nullptr);
  tls_conn_free(t);
}

}  // namespace

const conn_transport tls_transport = {tls_readv,   tls_writev, tls_shutdown_write, tls_reading,
                                      tls_end,     tls_destroy, tls_pending,       tls_closing};

bool tls_out_pending(const tls_conn *t) { return t->out_off < t->out_len; }

int tls_flush_out(tls_conn *t) {
  t->ticket_held = false;
  while (tls_out_pending(t)) {
    ssize_t n = send_all_or_some(t->c->fd, t->out + t->out_off, t->out_len - t->out_off);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
      return -errno;
    }
    t->out_off += static_cast<size_t>(n);
  }
  t->out_off = t->out_len = 0;
  if (t->fin_wanted)  // tls_shutdown_write's, deferred behind `out`
    send_fin(t);
  return 1;
}

// A process-wide method table, made once; BIO_meth_new is cheap but the
// table must outlive every BIO, so it is never freed.
BIO_METHOD *tls_bio_method() {
  static BIO_METHOD *method;  // constant-initialised: no runtime guard
  BIO_METHOD *m = __atomic_load_n(&method, __ATOMIC_ACQUIRE);
  if (m)
    return m;
  m = make_method();
  if (!m)
    return nullptr;
  BIO_METHOD *expected = nullptr;
  if (!__atomic_compare_exchange_n(&method, &expected, m, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE)) {
    BIO_meth_free(m);
    m = expected;
  }
  return m;
}

void tls_hold_ticket(tls_conn *t) {
  if (tls_timer_make(t) < 0) {
    tls_flush_out(t);  // out of memory for the kick: the ticket goes now
    return;
  }
  rill_timer_start(t->timer, 0, 0);
}

int tls_timer_make(tls_conn *t) {
  return t->timer ? 0 : rill_timer_new(t->c->base, on_timer, t, &t->timer);
}

void tls_conn_free(tls_conn *t) {
  if (!t)
    return;
  pending_cancel(t->c->base, &t->ticket_flush);
  rill_timer_free(t->timer);
  if (t->ssl) {
    // However the connection ended, its session stays good for resumption
    // (Go's client cache keeps it too); OpenSSL would otherwise void a
    // session whose connection closed without both close_notify alerts.
    if (t->handshaken)
      SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(t->ssl);  // frees the BIO
  }
  mem_free(t->out);
  mem_free(t->name);
  rill_tls_config_unref(t->config);
  destroy(t);
}

}  // namespace rill::detail
