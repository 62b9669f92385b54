// Read and write deadlines (G16, G20).
//
// Each connection has one timer for both deadlines, created by the first
// deadline it gets. Moving a deadline later — what a server does on every
// read — does not touch the timer: when it fires early it just re-arms for
// the real deadline. Only a deadline moved earlier restarts the timer. So the
// common pattern costs a comparison, not a heap operation, per read.
#include "net/net_impl.h"

#include "core/clock.h"

namespace rill::detail {
namespace {

// The earliest deadline that still has something to time out, or 0.
uint64_t next_deadline(const rill_conn *c) {
  uint64_t next = 0;
  auto consider = [&next](uint64_t d) {
    if (d && (!next || d < next))
      next = d;
  };
  if (c->has(conn_flag::read_wanted) && !c->has(conn_flag::read_timed_out) &&
      !c->has(conn_flag::read_finished))
    consider(c->read_deadline());
  if ((!c->queue_empty() || conn_out_pending(c)) && !c->has(conn_flag::write_timed_out))
    consider(c->write_deadline());
  return next;
}

void time_out_read(rill_conn *c) {
  c->set(conn_flag::read_timed_out, true);
  conn_update_io(c);
  c->events()->on_read(c, c->held(), c->held_len(), RILL_ETIMEOUT, c->arg);
}

void expire(rill_conn *c) {
  uint64_t now = c->base->now_ns;
  uint64_t write_deadline = c->write_deadline(), read_deadline = c->read_deadline();
  if ((!c->queue_empty() || conn_out_pending(c)) && write_deadline && now >= write_deadline &&
      !c->has(conn_flag::write_timed_out)) {
    c->set(conn_flag::write_timed_out, true);
    conn_fail_queue(c, RILL_ETIMEOUT, RILL_ETIMEOUT);
    if (c->lifetime.closing()) {
      conn_finish_close(c);  // a graceful close gives up on the flush
      return;
    }
  }
  if (c->has(conn_flag::read_wanted) && read_deadline && now >= read_deadline &&
      !c->has(conn_flag::read_timed_out) && !c->has(conn_flag::read_finished) && c->lifetime.open())
    time_out_read(c);
}

void on_timer(rill_timer *, void *arg) {
  auto *c = static_cast<rill_conn *>(arg);
  conn_held hold(c);  // on_read may close or free the connection
  c->rare->timer_due = 0;  // the timer lives in conn_rare
  expire(c);
  if (!conn_fd_closed(c))
    conn_deadline_update(c);
}

}  // namespace

bool conn_read_deadline_check(rill_conn *c) {
  // The timer would say so too, but later in this iteration: readiness is
  // dispatched first, and data must not slip out after the deadline.
  if (monotonic_ns() < c->rare->read_deadline)
    return false;
  time_out_read(c);
  return true;
}

void conn_deadline_update(rill_conn *c) {
  conn_rare *rare = c->rare;
  if (!rare || !rare->deadline_timer)
    return;  // never had a deadline
  uint64_t next = next_deadline(c);
  if (!next)
    return;
  if (rare->timer_due && rare->timer_due <= next)
    return;  // fires early enough; re-armed then
  uint64_t now = monotonic_ns();
  if (rill_timer_start(rare->deadline_timer, next > now ? next - now : 0, 0) == 0)
    rare->timer_due = next;
}

}  // namespace rill::detail

using namespace rill::detail;

extern "C" int rill_conn_set_deadline(rill_conn *conn, int which, uint64_t when) {
  int err = conn_check_open(conn);
  if (err)
    return err;
  if (which < RILL_DEADLINE_READ || which > RILL_DEADLINE_BOTH)
    return RILL_EINVAL;
  // No conn_rare yet means no deadline yet: clearing one needs none.
  conn_rare *rare = conn->rare;
  if (when) {
    rare = conn_rare_get(conn);
    if (!rare)
      return RILL_ENOMEM;
    if (!rare->deadline_timer) {
      err = rill_timer_new(conn->base, on_timer, conn, &rare->deadline_timer);
      if (err)
        return err;
    }
  }
  // Far-future deadlines saturate (~146 years) instead of wrapping round.
  constexpr uint64_t max_when = UINT64_MAX / 4;
  uint64_t when_ns = when > max_when ? max_when : when;
  if (which & RILL_DEADLINE_READ) {
    if (rare) {
      rare->read_deadline = when_ns;
      conn->set(conn_flag::has_read_deadline, when_ns != 0);
    }
    if (conn->has(conn_flag::read_timed_out)) {
      // A new deadline makes the connection readable again (G16).
      conn->set(conn_flag::read_timed_out, false);
      if (conn->held_len()) {
        conn->set(conn_flag::redeliver, true);
        conn_notify(conn);
      }
    }
  }
  if (which & RILL_DEADLINE_WRITE) {
    if (rare) {
      rare->write_deadline = when_ns;
      conn->set(conn_flag::has_write_deadline, when_ns != 0);
    }
    conn->set(conn_flag::write_timed_out, false);
  }
  conn_update_io(conn);
  conn_deadline_update(conn);
  return 0;
}
