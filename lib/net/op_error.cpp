// Go-style operation errors: "dial tcp 127.0.0.1:1: connect: connection
// refused", "read tcp 127.0.0.1:5000->127.0.0.1:7000: i/o timeout".
#include <cstdio>

#include "rill/net.h"

extern "C" int rill_format_op_error(char *buf, size_t size, const char *op, const char *network,
                                    const char *local, const char *remote, const char *call,
                                    int err) {
  if (!buf || size == 0 || !op || !network)
    return RILL_EINVAL;
  const char *arrow = local && remote ? "->" : "";
  const char *space = local || remote ? " " : "";
  int n = std::snprintf(buf, size, "%s %s%s%s%s%s: %s%s%s", op, network, space, local ? local : "",
                        arrow, remote ? remote : "", call ? call : "", call ? ": " : "",
                        rill_strerror(err));
  return n < 0 ? RILL_EINVAL : n;
}
