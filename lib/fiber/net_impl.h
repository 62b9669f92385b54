// The blocking facade's connection state, shared by lib/fiber/net_*.cpp.
#ifndef RILL_FIBER_NET_IMPL_H
#define RILL_FIBER_NET_IMPL_H

#include <cstdint>

#include "fiber/fiber_impl.h"

struct rill_net_conn {
  rill_conn *conn;          // nullptr once its close callback ran
  rill_base *base;
  bool closed = false;      // rill_net_close() was called
  bool free_requested = false;
  int inside = 0;           // fibers inside a call on this connection

  // Read side: one reader at a time (read_lock), parked in `reader`.
  rill::detail::fiber_lock read_lock;
  rill_fiber *reader = nullptr;
  char *read_buf = nullptr;
  size_t read_cap = 0;
  size_t read_got = 0;
  int read_end = 0;          // RILL_EOF or an error, once seen
  char *spill = nullptr;     // bytes left over when the end came
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

// Wraps a callback-API connection (from accept or dial).
rill_net_conn *net_conn_wrap(rill_conn *conn);

// Frees the handle if it was released and nobody is inside a call.
void net_conn_maybe_free(rill_net_conn *c);

}  // namespace rill::detail

#endif
