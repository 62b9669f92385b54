// The reference model of fuzz_write_queue (write_queue_model.h).
#include "write_queue_model.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

namespace wq {

void fail(const char *what) {
  fprintf(stderr, "fuzz_write_queue: %s\n", what);
  abort();
}

bool verbose() {
  static const bool on = getenv("RILL_FUZZ_VERBOSE") != nullptr;
  return on;
}

namespace {

uint8_t next_byte(model &m) {
  m.rng ^= m.rng << 13;
  m.rng ^= m.rng >> 7;
  m.rng ^= m.rng << 17;
  return static_cast<uint8_t>(m.rng >> 24);
}

}  // namespace

std::string make_bytes(model &m, size_t len) {
  std::string s(len, '\0');
  for (auto &c : s)
    c = static_cast<char>(next_byte(m));
  return s;
}

// ---- keeping the model in step with what rill reports -------------------

namespace {

// What may have dropped the queue just now, by the model's state: a
// deadline, a peer that went away, or the user's close.
unsigned drop_errors(const model &m, drop_cause cause) {
  if (cause == drop_cause::cancel)
    return err_cancel;
  return (m.deadline || m.timed_out ? err_timeout : 0u) | (m.peer_closed ? err_peer_gone : 0u);
}

void resolve_ref(model &m, size_t ref, drop_cause cause, unsigned errors) {
  if (ref == no_ref)
    return;
  m.refs[ref].resolved = true;
  m.refs[ref].dropped = cause;
  m.refs[ref].errors = errors;
}

void drop_queue(model &m, drop_cause cause) {
  unsigned errors = drop_errors(m, cause);
  if (cause == drop_cause::in_loop && m.queued)
    m.unreported.push_back(drop{m.queued, errors});
  for (segment &s : m.queue)
    resolve_ref(m, s.ref, cause, errors);
  m.queue.clear();
  m.queued = 0;
  if (cause == drop_cause::in_loop) {
    if (m.deadline)
      m.timed_out = true;
    if (m.peer_closed)
      m.write_failed = true;
  }
}

}  // namespace

void sync(model &m, drop_cause cause) {
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
    resolve_ref(m, s.ref, drop_cause::none, 0);
    m.queue.pop_front();
  }
  size_t queued = rill_conn_write_queued(m.conn);
  if (queued != m.queued) {
    check(queued == 0, "write_queued disagrees with the model");
    drop_queue(m, cause);
  }
}

// ---- callbacks -----------------------------------------------------------

namespace {

void check_callback(model &m, rill_conn *conn) {
  check(!m.in_api, "a callback ran inside the API call that caused it");
  check(!m.on_close_seen, "a callback after on_close");
  check(conn == m.conn, "a callback for another connection");
}

bool status_allowed(int err, unsigned errors) {
  if (err == RILL_ECANCELED)
    return errors & err_cancel;
  if (err == RILL_ETIMEOUT)
    return errors & err_timeout;
  if (err == RILL_EPIPE || err == RILL_ECONNRESET)
    return errors & err_peer_gone;
  return false;
}

}  // namespace

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
    check(status_allowed(status, r.errors), "a ref write failed with an unexpected status");
    check(written == r.taken && written < r.len + (r.len == 0), "written differs from what the kernel took");
  }
  run_armed(m);
}

void on_write_error(rill_conn *conn, int err, size_t unsent, void *arg) {
  model &m = *static_cast<model *>(arg);
  check_callback(m, conn);
  sync(m);
  TRACE("on_write_error %s, %zu unsent", rill_err_name(err), unsent);
  if (m.unreported.empty()) {
    // A drop the model could not see: nothing but zero-length writes.
    check(unsent == 0, "on_write_error for bytes the model says were not dropped");
    check(status_allowed(err, drop_errors(m, drop_cause::in_loop)), "on_write_error with an unexpected error");
  } else {
    check(unsent == m.unreported.front().unsent, "on_write_error's unsent differs from what was dropped");
    check(status_allowed(err, m.unreported.front().errors), "on_write_error with an unexpected error");
    m.unreported.pop_front();
  }
  run_armed(m);
}

void on_drain(rill_conn *conn, void *arg) {
  model &m = *static_cast<model *>(arg);
  check_callback(m, conn);
  sync(m);
  TRACE("on_drain");
  check(m.queued == 0, "on_drain with bytes still queued");
  run_armed(m);
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
  // The handle lives until on_close returns, closed.
  int rcs[3];
  {
    api_call guard(m);
    rcs[0] = rill_conn_write(conn, "x", 1);
    rcs[1] = rill_conn_close(conn);
    rcs[2] = rill_conn_abort(conn);
  }
  for (int rc : rcs)
    check(rc == RILL_ECLOSED, "a call inside on_close did not say RILL_ECLOSED");
  m.on_close_seen = true;
  m.conn = nullptr;  // freed when this returns
}

// ---- the peer ------------------------------------------------------------

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

// ---- what the header promises a write -----------------------------------

bool write_error_allowed(const model &m, int rc, uint64_t before, uint64_t after, bool *may_succeed) {
  *may_succeed = true;
  bool deadline_passed = m.deadline && before >= m.deadline;
  bool deadline_maybe = m.deadline && after >= m.deadline;
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
  allow(deadline_maybe, RILL_ETIMEOUT, true);
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

}  // namespace wq
