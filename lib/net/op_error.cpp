// Go-style operation errors: "dial tcp 127.0.0.1:1: connect: connection
// refused", "read tcp 127.0.0.1:5000->127.0.0.1:7000: i/o timeout".
//
// Every formatter here behaves as snprintf does, so callers can size a buffer
// the usual way: it never writes past `size`, always ends the text with a NUL
// when `size` > 0 (truncating it), and returns the length the whole text
// needs. A NULL `buf` is allowed only with `size` 0 (measuring).
#include <cstdio>

#include "rill/net.h"

extern "C" int rill_format_op_error(char *buf, size_t size, const char *op, const char *network,
                                    const char *local, const char *remote, const char *call,
                                    int err) {
  if ((!buf && size) || !op || !network)
    return RILL_EINVAL;
  const char *arrow = local && remote ? "->" : "";
  const char *space = local || remote ? " " : "";
  int n = std::snprintf(buf, size, "%s %s%s%s%s%s: %s%s%s", op, network, space, local ? local : "",
                        arrow, remote ? remote : "", call ? call : "", call ? ": " : "",
                        rill_strerror(err));
  return n < 0 ? RILL_EINVAL : n;
}
