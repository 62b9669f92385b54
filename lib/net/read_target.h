// The hook through which an internal reader lends its own buffer to a
// connection's read path (lib/net/conn_read.cpp), apart from net_impl.h so
// that the fiber facade's state can derive from it cheaply.
#ifndef RILL_NET_READ_TARGET_H
#define RILL_NET_READ_TARGET_H

#include <cstddef>

namespace rill::detail {

// An internal reader that lends its own buffer to the read path: the
// fiber facade, while a fiber waits in rill_net_read(buf, len). The
// connection's `arg` is then a conn_read_target (the facade's state derives
// from it), and read_target is set in its flags while `buf` is lent, so
// conn_on_readable() reads (read(2), or SSL_read through the transport)
// straight into the reader's buffer and on_read is shown that buffer:
// no copy out of the base's shared buffer. A flag rather than a field, so
// that no connection grows for it; set only while lent, so a connection
// whose `arg` is anything else never has it. Unused on io_uring, whose
// receives land in the base's buffer ring.
struct conn_read_target {
  char *buf = nullptr;
  size_t cap = 0;
};

}  // namespace rill::detail

#endif
