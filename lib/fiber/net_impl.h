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
#ifndef RILL_FIBER_NET_IMPL_H
#define RILL_FIBER_NET_IMPL_H

#include <cstdint>

#include "fiber/fiber_impl.h"

struct rill_net_conn {
  rill::detail::life lifetime;
  rill_conn *conn;          // nullptr once its close callback ran
  rill_base *base;
  bool user_released = false;  // rill_net_conn_free() was called

  // Read side: one reader at a time (read_lock), parked in `reader`.
  rill::detail::fiber_lock read_lock;
  rill_fiber *reader = nullptr;
  char *read_buf = nullptr;
  size_t read_cap = 0;
  size_t read_got = 0;
  int read_end = 0;          // RILL_EOF or an error, once seen
  // Bytes the connection held when the end came, kept for later reads.
  // While reading goes on the buffer is a reserve as large as what the
  // connection holds unread, so keeping them at the end needs no memory.
  char *spill = nullptr;
  size_t spill_cap = 0;
  size_t spill_len = 0;
  size_t spill_off = 0;
  uint64_t read_deadline = 0;

  // Write side: one writer at a time (write_lock), parked in `writer`.
  rill::detail::fiber_lock write_lock;
  rill_fiber *writer = nullptr;
  uint64_t write_deadline = 0;
  uint64_t written_at_close = 0;

  char local_addr[RILL_ADDRSTRLEN] = "";
  char remote_addr[RILL_ADDRSTRLEN] = "";
};

namespace rill::detail {

// Wraps a callback-API connection (from accept or dial); nullptr when out
// of memory, leaving `conn` to the caller.
rill_net_conn *net_conn_wrap(rill_conn *conn);

}  // namespace rill::detail

#endif
