// Go's texts for errors on a connection or listener, shared by the callback
// API (lib/net) and the facade (lib/fiber), which format the same way.
#ifndef RILL_NET_OP_ERROR_H
#define RILL_NET_OP_ERROR_H

#include <cstddef>

namespace rill::detail {

// "<op> <network> <local>-><remote>: [<call>: ]<text>" for an operation
// named as rill_conn_format_error() documents ("read", "set_deadline", ...),
// with the addresses Go shows for that operation.
int format_conn_error(char *buf, size_t size, const char *op, const char *network, const char *local,
                      const char *remote, int err);

// "<op> <network> <address>: [<call>: ]<text>" for a listener's operation
// ("accept", "close", "set_deadline").
int format_listener_error(char *buf, size_t size, const char *op, const char *network,
                          const char *address, int err);

}  // namespace rill::detail

#endif
