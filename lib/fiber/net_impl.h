// The blocking facade's connection state, shared by lib/fiber/net_*.cpp.
//
// Lifetime (core/lifetime.h): a rill_net_conn is held by
//   - its user, from wrap until rill_net_conn_free();
//   - every fiber inside a call on it, for the whole call (parks included);
//   - the callback-API connection under it, until that one's on_close ran.
// rill_net_close() starts CLOSING: it wakes every parked fiber with
// RILL_ECLOSED and closes the connection; every later call returns
// RILL_ECLOSED. on_close makes it CLOSED. The last release frees it, so a
// fiber woken by a close, or a free from another fiber, never finds freed
// memory.
//
// Size: thousands of idle connections sit on one base, each one of these on
// top of its rill_conn. What only a call in progress needs (what a writer
// is owed) lives on that fiber's stack and is linked here while it parks;
// what only the end needs (the bytes left unread, the addresses once the
// rill_conn is gone) is allocated then. A parked reader's state is here,
// not on its stack: the reader's stack may be given back to the kernel
// while it waits (fiber_park_idle), and on_read must still find it.
#ifndef RILL_FIBER_NET_IMPL_H
#define RILL_FIBER_NET_IMPL_H

#include <cstdint>

#include "fiber/fiber_impl.h"
#include "net/read_target.h"

namespace rill::detail {
struct net_write_wait;  // a writer parked in rill_net_write, on its stack
struct net_spill;       // bytes kept for later reads, with their counts
}  // namespace rill::detail

// The conn_read_target base is the buffer a parked reader lends to the
// connection's read path (`buf`, `cap`: its rill_net_read() arguments), so
// the bytes land there straight from the kernel; the connection's `arg` is
// that base (net_conn.cpp).
struct rill_net_conn : rill::detail::conn_read_target {
  rill::detail::life lifetime;
  int read_end = 0;            // RILL_EOF or an error, once seen
  bool user_released = false;  // rill_net_conn_free() was called
  bool is_unix = false;        // for error texts after `conn` is gone
  bool reading = false;        // rill_conn_read_start() called, no stop since
  rill_conn *conn;             // nullptr once its close callback ran
  // "local\0remote\0", copied from `conn` when it goes (Go's LocalAddr and
  // error texts answer after Close); nullptr while `conn` lives, or when
  // that copy found no memory.
  char *addrs_after_close = nullptr;

  // Read side: one reader at a time (read_lock), parked as `reader` with
  // its buffer (the base's buf and cap).
  rill::detail::fiber_lock read_lock;
  rill_fiber *reader = nullptr;
  rill::detail::net_spill *spill = nullptr;
  uint64_t read_deadline = 0;

  // Write side: one writer at a time (write_lock), parked in `writer`; a
  // TLS Close waiting for its close_notify parks there too, once no writer
  // is left.
  rill::detail::fiber_lock write_lock;
  rill::detail::net_write_wait *writer = nullptr;
  uint64_t write_deadline = 0;
};

namespace rill::detail {

// Wraps a callback-API connection (from accept or dial); nullptr when out
// of memory, leaving `conn` to the caller.
rill_net_conn *net_conn_wrap(rill_conn *conn);

// A reference held across several calls (rill_net_copy): a free from
// another fiber meanwhile leaves the memory until the release.
void net_conn_hold(rill_net_conn *c);
void net_conn_release(rill_net_conn *c);

}  // namespace rill::detail

// For tests (C, against the static library; not exported): how long a TLS
// rill_net_close() waits for its close_notify, Go's 5 s by default.
extern "C" void rill_internal_set_close_notify_bound(uint64_t ns);

#endif
