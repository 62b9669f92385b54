// Fuzz target: a model test of a connection's write queue.
//
// The input is a script of operations on one rill_conn made from one end of
// a Unix socketpair with a small send buffer (rill_conn_from_fd); the
// harness plays the peer on the other end, reading random amounts at random
// times, or not at all, or closing. Operations: copying writes and
// zero-copy ref writes of random lengths (zero included), write deadlines
// (passed, or 1-2 ms ahead on the base's clock), rill_conn_close_write,
// rill_conn_close, rill_conn_close_now, rill_conn_abort, and loop
// iterations; any of them may also be armed to run from inside the next
// callback, where rill dispatches. Every step is compared with a reference
// model (write_queue_model.h):
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
//    (calls inside it say RILL_ECLOSED) and nothing after it, and
//    rill_base_free() returns 0 (no handle left).
//
// Each input is bounded (64 operations, 256 KiB written) and waits only on
// the base's own timers, at most a few milliseconds in all.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "write_queue_model.h"

using namespace wq;

namespace {

// Two bytes: the low two bits pick a scale (up to 63, 1023, 16383 or
// 65532 bytes), the other fourteen the length.
size_t pick_length(script &s) {
  uint8_t a = s.byte(), b = s.byte();
  size_t value = static_cast<size_t>(b) << 6 | a >> 2;
  static const size_t masks[] = {0x3F, 0x3FF, 0x3FFF};
  return (a & 3) == 3 ? value << 2 : value & masks[a & 3];
}

void op_write(model &m, script &s, bool by_ref) {
  size_t len = pick_length(s);
  if (m.total + len > max_total)
    len = max_total - m.total;
  std::string bytes = make_bytes(m, len);
  int rc;
  ref_write r;
  ref_arg *ra = nullptr;
  uint64_t before = rill_time_now();
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
  uint64_t after = rill_time_now();
  TRACE("%s of %zu: %s", by_ref ? "ref write" : "write", len, rill_err_name(rc));
  if (m.state != conn_state::open) {
    check(rc == RILL_ECLOSED, "a write on a closed connection did not say RILL_ECLOSED");
  } else if (rc != 0) {
    bool may_succeed;
    if (!write_error_allowed(m, rc, before, after, &may_succeed)) {
      fprintf(stderr, "fuzz_write_queue: write returned %d (%s)\n", rc, rill_err_name(rc));
      fail("a write failed unexpectedly");
    }
  } else {
    bool may_succeed;
    write_error_allowed(m, RILL_EPIPE, before, after, &may_succeed);
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
  uint64_t now = rill_time_now();
  uint64_t when = kind == 0 ? 0 : kind == 1 ? now - RILL_MSEC : now + (kind - 1) * RILL_MSEC;
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
  m.deadline = when;
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
  bool timer = m.conn && m.deadline && !m.timed_out && m.queued &&
               m.deadline > rill_time_now();
  run_loop(m, timer ? RILL_RUN_ONCE : RILL_RUN_NOWAIT);
}

void op_arm(model &m, script &s) {
  for (uint8_t &b : m.armed)
    b = s.byte();
  m.is_armed = true;
}

void run_op(model &m, script &s) {
  uint8_t op = s.byte();
  bool alive = m.conn != nullptr;
  switch (op % 17) {
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
    case 16:
      op_arm(m, s);
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

// Runs the armed operation from inside a callback, once.
void wq::run_armed(model &m) {
  if (!m.is_armed || !m.conn)
    return;
  m.is_armed = false;
  uint8_t bytes[3];
  memcpy(bytes, m.armed, sizeof bytes);
  script s{bytes, sizeof bytes};
  uint8_t action = s.byte();
  TRACE("inside a callback:");
  switch (action % 6) {
    case 0:
      op_write(m, s, false);
      break;
    case 1:
      op_write(m, s, true);
      break;
    case 2:
      op_close(m, s.byte() % 3);
      break;
    case 3:
      op_deadline(m, s);
      break;
    case 4:
      op_close_write(m);
      break;
    case 5:
      op_probe(m);
      break;
  }
}

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
