// Fuzz target: a model test of a connection's write queue.
//
// The input is a script of operations on one rill_conn made from one end of
// a Unix socketpair with a small send buffer (rill_conn_from_fd); the
// harness plays the peer on the other end, reading random amounts at random
// times, or not at all, or closing. Operations: copying writes and
// zero-copy ref writes of random lengths (zero included), write deadlines
// (passed, or 1-2 ms ahead on the base's clock), rill_conn_close_write,
// rill_conn_close, rill_conn_close_now, rill_conn_abort, and loop
// iterations. Every step is compared with a reference model:
//
//  - the kernel stream: what the peer reads is always a prefix of the bytes
//    the model says the kernel took, and at the end (EOF) exactly those;
//  - the kernel took the accepted writes in call order: rill_conn_bytes_written
//    only moves bytes from the front of the model's queue to the kernel
//    stream, and rill_conn_write_queued equals what the model still queues,
//    except that a failure drops the whole queue at once (abort and
//    close_now drop it at the call, a passed write deadline or a vanished
//    peer in the loop, each reported by one on_write_error whose `unsent`
//    is the amount dropped);
//  - every ref write completes exactly once, in call order, status 0 only
//    when all its bytes reached the kernel, otherwise the error of what
//    dropped it and `written` equal to what the kernel took of it; the
//    caller's bytes are never touched and never read after the completion
//    (the buffer is freed in the callback: the sanitizer watches);
//  - calls return what the header promises for the state the model is in
//    (RILL_ECLOSED on a closed connection, -EPIPE after close_write,
//    RILL_ETIMEOUT once the write deadline has passed);
//  - no callback inside the API call that caused it, on_close exactly once
//    and nothing after it, and rill_base_free() returns 0 (no handle left).
//
// Each input is bounded (64 operations, 256 KiB written) and waits only on
// the base's own timers, at most a few milliseconds in all.
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <string>
#include <vector>

#include "rill.h"

namespace {

constexpr size_t max_ops = 64;
constexpr size_t max_total = 256 * 1024;
constexpr size_t no_ref = SIZE_MAX;

[[noreturn]] void fail(const char *what) {
  fprintf(stderr, "fuzz_write_queue: %s\n", what);
  abort();
}

void check(bool ok, const char *what) {
  if (!ok)
    fail(what);
}

// RILL_FUZZ_VERBOSE=1 traces every step, to read what an input does.
bool verbose() {
  static const bool on = getenv("RILL_FUZZ_VERBOSE") != nullptr;
  return on;
}

#define TRACE(...)                                \
  do {                                            \
    if (verbose()) {                              \
      fprintf(stderr, "fuzz_write_queue: ");      \
      fprintf(stderr, __VA_ARGS__);               \
      fputc('\n', stderr);                        \
    }                                             \
  } while (0)

// Reads the script; past its end every byte is 0.
struct script {
  const uint8_t *data;
  size_t size;
  size_t pos = 0;
  uint8_t byte() { return pos < size ? data[pos++] : 0; }
  bool done() const { return pos >= size; }
};

enum class drop_cause { none, cancel, in_loop };

struct ref_write {
  size_t len;
  size_t taken = 0;       // bytes the model says the kernel took
  bool resolved = false;  // left the model's queue (sent whole, or dropped)
  drop_cause dropped = drop_cause::none;
  bool completed = false;
  char *buf;              // the caller's bytes, freed by the completion
  std::string expect;     // what buf must still hold
};

// A write the model still queues: bytes (copy writes) or a ref write.
struct segment {
  std::string bytes;
  size_t off = 0;
  size_t ref = no_ref;
};

enum class conn_state { open, closing, closed };

struct model {
  rill_base *base = nullptr;
  rill_conn *conn = nullptr;  // nullptr once on_close has run
  int peer = -1;
  bool in_api = false;
  uint64_t rng;

  std::string kernel;         // bytes the kernel took, in order
  std::deque<segment> queue;  // accepted, not yet taken
  size_t queued = 0;          // bytes in `queue`
  std::string received;       // what the peer read
  size_t total = 0;           // bytes accepted

  std::vector<ref_write> refs;
  size_t last_completed = no_ref;
  std::deque<size_t> unreported;  // in-loop drops on_write_error owes

  conn_state state = conn_state::open;
  bool on_close_seen = false;
  bool shut_write = false;
  bool peer_closed = false;
  bool peer_eof = false;
  uint64_t deadline_ms = 0;
  bool timed_out = false;     // an in-loop drop while a deadline was set
  bool write_failed = false;  // an in-loop drop after the peer closed
};

// Guards an API call: a callback that runs inside it is a bug.
struct api_call {
  explicit api_call(model &m) : m_(m) { m_.in_api = true; }
  ~api_call() { m_.in_api = false; }
  model &m_;
};

uint8_t next_byte(model &m) {
  m.rng ^= m.rng << 13;
  m.rng ^= m.rng >> 7;
  m.rng ^= m.rng << 17;
  return static_cast<uint8_t>(m.rng >> 24);
}

std::string make_bytes(model &m, size_t len) {
  std::string s(len, '\0');
  for (auto &c : s)
    c = static_cast<char>(next_byte(m));
  return s;
}

// ---- keeping the model in step with what rill reports -------------------

void resolve_ref(model &m, size_t ref, drop_cause cause) {
  if (ref == no_ref)
    return;
  m.refs[ref].resolved = true;
  m.refs[ref].dropped = cause;
}

void drop_queue(model &m, drop_cause cause) {
  if (cause == drop_cause::in_loop && m.queued)
    m.unreported.push_back(m.queued);
  for (segment &s : m.queue)
    resolve_ref(m, s.ref, cause);
  m.queue.clear();
  m.queued = 0;
  if (cause == drop_cause::in_loop) {
    if (m.deadline_ms)
      m.timed_out = true;
    if (m.peer_closed)
      m.write_failed = true;
  }
}

// Moves what the kernel took since the last look from the model's queue to
// its kernel stream, and notices a dropped queue. Valid while the
// connection lives; `cause` says what may have dropped the queue.
void sync(model &m, drop_cause cause = drop_cause::in_loop) {
  if (!m.conn)
    return;
  uint64_t written = rill_conn_bytes_written(m.conn);
  check(written >= m.kernel.size(), "bytes_written went backwards");
  size_t delta = static_cast<size_t>(written - m.kernel.size());
  check(delta <= m.queued, "the kernel took more than was queued");
  while (!m.queue.empty()) {
    segment &s = m.queue.front();
    size_t n = s.bytes.size() - s.off;
    if (n > delta)
      n = delta;
    m.kernel.append(s.bytes, s.off, n);
    s.off += n;
    delta -= n;
    m.queued -= n;
    if (s.ref != no_ref)
      m.refs[s.ref].taken += n;
    if (s.off < s.bytes.size())
      break;
    resolve_ref(m, s.ref, drop_cause::none);
    m.queue.pop_front();
  }
  size_t queued = rill_conn_write_queued(m.conn);
  if (queued != m.queued) {
    check(queued == 0, "write_queued disagrees with the model");
    drop_queue(m, cause);
  }
}

// ---- callbacks -----------------------------------------------------------

struct ref_arg {
  model *m;
  size_t index;
};

void check_callback(model &m, rill_conn *conn) {
  check(!m.in_api, "a callback ran inside the API call that caused it");
  check(!m.on_close_seen, "a callback after on_close");
  check(conn == m.conn, "a callback for another connection");
}

bool status_allowed(const model &m, int err, drop_cause cause) {
  if (cause == drop_cause::cancel)
    return err == RILL_ECANCELED;
  if (err == RILL_ETIMEOUT)
    return m.deadline_ms != 0 || m.timed_out;
  if (err == RILL_EPIPE || err == RILL_ECONNRESET)
    return m.peer_closed;
  return false;
}

void on_ref_done(rill_conn *conn, int status, size_t written, void *arg) {
  auto *ra = static_cast<ref_arg *>(arg);
  model &m = *ra->m;
  size_t index = ra->index;
  delete ra;
  check_callback(m, conn);
  sync(m);
  TRACE("ref #%zu done: %s, %zu written", index, rill_err_name(status), written);
  ref_write &r = m.refs[index];
  check(!r.completed, "a ref write completed twice");
  r.completed = true;
  check(m.last_completed == no_ref || index > m.last_completed, "ref writes completed out of order");
  m.last_completed = index;
  check(memcmp(r.buf, r.expect.data(), r.len) == 0, "rill changed the bytes of a ref write");
  free(r.buf);
  r.buf = nullptr;
  if (!r.resolved) {
    // Only a drop the model could not see (no bytes in the queue: zero
    // lengths only) leaves it unresolved; then it must fail.
    check(status != 0, "a ref write completed before the writes ahead of it were sent");
    check(m.queued == 0, "a ref write failed while bytes ahead of it were queued");
    drop_queue(m, m.state == conn_state::closed ? drop_cause::cancel : drop_cause::in_loop);
  }
  if (status == 0) {
    check(r.dropped == drop_cause::none && r.taken == r.len, "status 0 for a ref write not sent whole");
    check(written == r.len, "status 0 but written differs from len");
  } else {
    check(r.dropped != drop_cause::none, "a ref write failed that the model says was sent");
    check(status_allowed(m, status, r.dropped), "a ref write failed with an unexpected status");
    check(written == r.taken && written < r.len + (r.len == 0), "written differs from what the kernel took");
  }
}

void on_write_error(rill_conn *conn, int err, size_t unsent, void *arg) {
  model &m = *static_cast<model *>(arg);
  check_callback(m, conn);
  sync(m);
  TRACE("on_write_error %s, %zu unsent", rill_err_name(err), unsent);
  check(status_allowed(m, err, drop_cause::in_loop), "on_write_error with an unexpected error");
  if (m.unreported.empty()) {
    check(unsent == 0, "on_write_error for bytes the model says were not dropped");
    return;
  }
  check(unsent == m.unreported.front(), "on_write_error's unsent differs from what was dropped");
  m.unreported.pop_front();
}

void on_drain(rill_conn *conn, void *arg) {
  model &m = *static_cast<model *>(arg);
  check_callback(m, conn);
  sync(m);
  TRACE("on_drain");
  check(m.queued == 0, "on_drain with bytes still queued");
}

void on_close(rill_conn *conn, void *arg) {
  model &m = *static_cast<model *>(arg);
  check_callback(m, conn);
  TRACE("on_close");
  check(m.state != conn_state::open, "on_close without a close");
  sync(m);
  check(m.queue.empty(), "on_close with writes neither sent nor dropped");
  check(m.unreported.empty(), "a dropped queue was never reported");
  for (const ref_write &r : m.refs)
    check(r.completed, "on_close before every ref write completed");
  m.on_close_seen = true;
  m.conn = nullptr;  // freed when this returns
}

// ---- the peer ------------------------------------------------------------

// Reads at most `max` bytes (SIZE_MAX: until EAGAIN or EOF).
void peer_read(model &m, size_t max) {
  if (m.peer_closed || m.peer_eof)
    return;
  char buf[16384];
  while (max) {
    size_t want = max < sizeof buf ? max : sizeof buf;
    ssize_t n = recv(m.peer, buf, want, MSG_DONTWAIT);
    if (n < 0) {
      check(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR, "the peer's recv failed");
      // The FIN goes out as the queue empties, so with everything read the
      // peer must see it.
      sync(m);
      check(!(m.shut_write && m.queue.empty() && m.received == m.kernel),
            "no EOF after close_write and a flushed queue");
      return;
    }
    sync(m);
    if (n == 0) {
      check(m.shut_write || m.state != conn_state::open, "EOF without close_write or close");
      check(m.queue.empty(), "EOF with writes still queued");
      check(m.received == m.kernel, "EOF before every byte the kernel took");
      m.peer_eof = true;
      TRACE("peer: EOF after %zu bytes", m.received.size());
      return;
    }
    m.received.append(buf, static_cast<size_t>(n));
    TRACE("peer: read %zd (%zu in all)", n, m.received.size());
    check(m.received.size() <= m.kernel.size(), "the peer read more than the kernel took");
    check(memcmp(m.received.data() + m.received.size() - n, m.kernel.data() + m.received.size() - n,
                 static_cast<size_t>(n)) == 0,
          "the peer read bytes out of order");
    max -= static_cast<size_t>(n) < max ? static_cast<size_t>(n) : max;
  }
}

// ---- operations ----------------------------------------------------------

// Two bytes: the low two bits pick a scale (up to 63, 1023, 16383 or
// 65532 bytes), the other fourteen the length.
size_t pick_length(script &s) {
  uint8_t a = s.byte(), b = s.byte();
  size_t value = static_cast<size_t>(b) << 6 | a >> 2;
  static const size_t masks[] = {0x3F, 0x3FF, 0x3FFF};
  return (a & 3) == 3 ? value << 2 : value & masks[a & 3];
}

// The errors a write may meet now, and whether it may also succeed.
bool write_error_allowed(const model &m, int rc, bool *may_succeed) {
  *may_succeed = true;
  bool deadline_passed = m.deadline_ms && rill_base_now(m.base) >= m.deadline_ms;
  bool any = false, ok = false;
  auto allow = [&](bool cond, int err, bool also_ok) {
    if (!cond)
      return;
    any = true;
    ok = ok || rc == err;
    if (!also_ok)
      *may_succeed = false;
  };
  allow(m.shut_write, RILL_EPIPE, false);
  allow(m.timed_out || deadline_passed, RILL_ETIMEOUT, false);
  // After the peer closed, the kernel refuses only a write that reaches it.
  allow(m.peer_closed, RILL_EPIPE, !m.write_failed);
  allow(m.peer_closed, RILL_ECONNRESET, !m.write_failed);
  if (!any)
    return false;
  return ok;
}

void accept_bytes(model &m, std::string bytes, size_t ref) {
  m.total += bytes.size();
  m.queued += bytes.size();
  segment s;
  s.bytes = std::move(bytes);
  s.ref = ref;
  m.queue.push_back(std::move(s));
}

void op_write(model &m, script &s, bool by_ref) {
  size_t len = pick_length(s);
  if (m.total + len > max_total)
    len = max_total - m.total;
  std::string bytes = make_bytes(m, len);
  int rc;
  ref_write r;
  ref_arg *ra = nullptr;
  if (by_ref) {
    r.len = len;
    r.buf = static_cast<char *>(malloc(len ? len : 1));
    check(r.buf != nullptr, "out of memory");
    memcpy(r.buf, bytes.data(), len);
    r.expect = bytes;
    ra = new ref_arg{&m, m.refs.size()};
    api_call guard(m);
    rc = rill_conn_write_ref(m.conn, r.buf, len, on_ref_done, ra);
  } else {
    std::string scratch = bytes;
    api_call guard(m);
    rc = rill_conn_write(m.conn, scratch.data(), len);
    // rill copied what it queued: the caller may reuse its buffer at once.
    memset(&scratch[0], 0xEE, len);
  }
  TRACE("%s of %zu: %s", by_ref ? "ref write" : "write", len, rill_err_name(rc));
  if (m.state != conn_state::open) {
    check(rc == RILL_ECLOSED, "a write on a closed connection did not say RILL_ECLOSED");
  } else if (rc != 0) {
    bool may_succeed;
    if (!write_error_allowed(m, rc, &may_succeed)) {
      fprintf(stderr, "fuzz_write_queue: write returned %d (%s)\n", rc, rill_err_name(rc));
      fail("a write failed unexpectedly");
    }
  } else {
    bool may_succeed;
    write_error_allowed(m, RILL_EPIPE, &may_succeed);
    check(may_succeed || (len == 0 && !by_ref), "a write succeeded that should have failed");
  }
  if (rc != 0) {
    if (by_ref) {
      free(r.buf);
      delete ra;
    }
    return;
  }
  size_t ref = no_ref;
  if (by_ref) {
    ref = m.refs.size();
    m.refs.push_back(std::move(r));
  }
  if (len || by_ref)
    accept_bytes(m, std::move(bytes), ref);
  sync(m);
}

void op_deadline(model &m, script &s) {
  uint8_t kind = s.byte() % 4;
  uint64_t now = rill_base_now(m.base);
  uint64_t when = kind == 0 ? 0 : kind == 1 ? now - 1 : now + kind - 1;
  int rc;
  {
    api_call guard(m);
    rc = rill_conn_set_deadline(m.conn, RILL_DEADLINE_WRITE, when);
  }
  TRACE("deadline %llu (now %llu): %s", static_cast<unsigned long long>(when),
        static_cast<unsigned long long>(now), rill_err_name(rc));
  if (m.state != conn_state::open) {
    check(rc == RILL_ECLOSED, "set_deadline on a closed connection did not say RILL_ECLOSED");
    return;
  }
  check(rc == 0, "set_deadline failed");
  m.deadline_ms = when;
  m.timed_out = false;
}

void op_close_write(model &m) {
  int rc;
  {
    api_call guard(m);
    rc = rill_conn_close_write(m.conn);
  }
  TRACE("close_write: %s", rill_err_name(rc));
  if (m.state != conn_state::open) {
    check(rc == RILL_ECLOSED, "close_write on a closed connection did not say RILL_ECLOSED");
    return;
  }
  check(rc == 0 || (m.peer_closed && (rc == -ENOTCONN || rc == RILL_EPIPE)), "close_write failed");
  m.shut_write = true;
}

void op_close(model &m, int which) {
  sync(m);
  int rc;
  {
    api_call guard(m);
    rc = which == 0 ? rill_conn_close(m.conn) : which == 1 ? rill_conn_close_now(m.conn) : rill_conn_abort(m.conn);
  }
  TRACE("%s: %s", which == 0 ? "close" : which == 1 ? "close_now" : "abort", rill_err_name(rc));
  if (which == 2 && m.state == conn_state::closing) {
    // Abort may give up a graceful close, unless that finished meanwhile.
    check(rc == 0 || rc == RILL_ECLOSED, "abort during a graceful close failed");
    if (rc == 0) {
      m.state = conn_state::closed;
      sync(m, drop_cause::cancel);
    }
    return;
  }
  if (m.state != conn_state::open) {
    check(rc == RILL_ECLOSED, "a second close did not say RILL_ECLOSED");
    return;
  }
  check(rc == 0, "close failed");
  m.state = which == 0 ? conn_state::closing : conn_state::closed;
  sync(m, which == 0 ? drop_cause::in_loop : drop_cause::cancel);
  if (which != 0)
    check(m.queue.empty(), "close_now/abort kept the queue");
}

// Calls that must all say RILL_ECLOSED once the connection is closing.
void op_probe(model &m) {
  int rcs[4];
  {
    api_call guard(m);
    rcs[0] = rill_conn_read_stop(m.conn);
    rcs[1] = rill_conn_read_start(m.conn);
    rcs[2] = rill_conn_set_no_delay(m.conn, 1);
    rcs[3] = rill_conn_fd(m.conn);
  }
  if (m.state != conn_state::open) {
    for (int rc : rcs)
      check(rc == RILL_ECLOSED, "a call on a closed connection did not say RILL_ECLOSED");
    return;
  }
  check(rcs[0] == 0, "read_stop failed");
  check(rcs[1] == RILL_EINVAL, "read_start without on_read did not say RILL_EINVAL");
  check(rcs[2] == -EOPNOTSUPP, "a TCP option on a Unix socket did not say -EOPNOTSUPP");
  check(rcs[3] >= 0, "rill_conn_fd failed");
}

void run_loop(model &m, rill_run_mode mode) {
  int rc = rill_base_run(m.base, mode);
  check(rc >= 0, "rill_base_run failed");
  sync(m);
  TRACE("run %s: %zu queued, %zu sent", mode == RILL_RUN_ONCE ? "once" : "nowait", m.queued,
        m.kernel.size());
}

// One loop iteration that may wait, but only when a timer will end the
// wait: a write deadline ahead with bytes queued.
void op_wait(model &m) {
  bool timer = m.conn && m.deadline_ms && !m.timed_out && m.queued &&
               m.deadline_ms > rill_base_now(m.base);
  run_loop(m, timer ? RILL_RUN_ONCE : RILL_RUN_NOWAIT);
}

void run_op(model &m, script &s) {
  uint8_t op = s.byte();
  bool alive = m.conn != nullptr;
  switch (op % 16) {
    case 0:
    case 1:
    case 2:
      if (alive)
        op_write(m, s, false);
      break;
    case 3:
    case 4:
    case 5:
      if (alive)
        op_write(m, s, true);
      break;
    case 6:
    case 7: {
      size_t n = static_cast<size_t>(s.byte()) << (s.byte() % 9);
      peer_read(m, n);
      break;
    }
    case 8:
      peer_read(m, SIZE_MAX);
      break;
    case 9: {
      int n = 1 + s.byte() % 4;
      for (int i = 0; i < n; i++)
        run_loop(m, RILL_RUN_NOWAIT);
      break;
    }
    case 10:
      op_wait(m);
      break;
    case 11:
      if (alive)
        op_deadline(m, s);
      break;
    case 12:
      if (alive)
        op_close_write(m);
      break;
    case 13:
      if (alive)
        op_close(m, s.byte() % 3);
      break;
    case 14:
      if (alive)
        op_probe(m);
      break;
    case 15:
      // The peer goes away, now and then.
      if (s.byte() % 4 == 0 && !m.peer_closed) {
        close(m.peer);
        m.peer = -1;
        m.peer_closed = true;
      }
      break;
  }
}

// Closes (if the script did not), runs the loop until on_close, reads to
// EOF and checks the end state.
void finish(model &m, script &s) {
  if (m.state == conn_state::open)
    op_close(m, s.byte() % 3);
  for (int i = 0; !m.on_close_seen; i++) {
    check(i < 100000, "the connection never closes");
    peer_read(m, SIZE_MAX);
    // Waiting is safe: the peer has read everything, so a connection still
    // flushing is writable, and a closed one has its report queued.
    run_loop(m, RILL_RUN_ONCE);
  }
  if (!m.peer_closed) {
    peer_read(m, SIZE_MAX);
    check(m.peer_eof, "no EOF after the connection closed");
  }
  for (int i = 0; i < 3; i++)
    run_loop(m, RILL_RUN_NOWAIT);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return -1;
  script s{data, size};
  uint8_t config = s.byte();
  model m;
  m.rng = 0x9E3779B97F4A7C15ull ^ config;

  rill_base_config bc{};
  bc.backend = (config & 4) ? "poll" : "epoll";
  check(rill_base_new(&bc, &m.base) == 0, "rill_base_new");
  int sv[2];
  check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
  static const int sndbufs[] = {4096, 8192, 16384, 65536};
  int sndbuf = sndbufs[config & 3];
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  check(rill_conn_from_fd(m.base, sv[0], &m.conn) == 0, "rill_conn_from_fd");
  m.peer = sv[1];
  rill_conn_events ev{};
  ev.on_drain = on_drain;
  ev.on_write_error = on_write_error;
  ev.on_close = on_close;
  check(rill_conn_start(m.conn, &ev, &m) == 0, "rill_conn_start");

  for (size_t i = 0; i < max_ops && !s.done(); i++)
    run_op(m, s);
  finish(m, s);

  for (const ref_write &r : m.refs)
    check(r.completed, "a ref write never completed");
  if (m.peer >= 0)
    close(m.peer);
  check(rill_base_free(m.base) == 0, "rill_base_free did not free the base");
  return 0;
}
