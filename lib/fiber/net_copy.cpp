// rill_net_copy: Go's io.Copy between two facade connections.
//
// Read, then write all of it, then read again: the write completes (the
// kernel took every byte) before the next read, so a slow destination
// holds the source back through TCP, and memory is the one buffer. The
// buffer comes from rill's allocator rather than the fiber's stack, whose
// size the user picks. Both handles are held for the whole copy, so a
// free from another fiber ends it with RILL_ECLOSED instead of leaving it
// with freed memory.
#include "fiber/net_impl.h"
#include "rill/pipe.h"

using namespace rill::detail;

extern "C" int rill_net_copy(rill_net_conn *dst, rill_net_conn *src, uint64_t *written) {
  if (written)
    *written = 0;
  if (!dst || !src || dst == src)
    return RILL_EINVAL;
  if (!rill_fiber_current())
    return RILL_ENOTFIBER;
  if (dst->lifetime.closing() || src->lifetime.closing())
    return RILL_ECLOSED;  // not a read first that could park for ever
  constexpr size_t buffer_size = 32 * 1024;  // Go's io.Copy uses the same
  char *buf = static_cast<char *>(mem_alloc(buffer_size));
  if (!buf)
    return RILL_ENOMEM;
  net_conn_hold(dst);
  net_conn_hold(src);
  uint64_t total = 0;
  int err = 0;
  for (;;) {
    ssize_t n = rill_net_read(src, buf, buffer_size);
    if (n == RILL_EOF)
      break;
    if (n < 0) {
      err = static_cast<int>(n);
      break;
    }
    size_t sent = 0;
    err = rill_net_write(dst, buf, static_cast<size_t>(n), &sent);
    total += sent;
    if (err)
      break;
  }
  net_conn_release(src);
  net_conn_release(dst);
  mem_free(buf);
  if (written)
    *written = total;
  return err;
}
