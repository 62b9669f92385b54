// Go-style operation errors: "dial tcp 127.0.0.1:1: connect: connection
// refused", "read tcp 127.0.0.1:5000->127.0.0.1:7000: i/o timeout",
// "listen tcp: address 1.2.3.4: missing port in address".
//
// Every formatter here behaves as snprintf does, so callers can size a buffer
// the usual way: it never writes past `size`, always ends the text with a NUL
// when `size` > 0 (truncating it), and returns the length the whole text
// needs. A NULL `buf` is allowed only with `size` 0 (measuring).
#include "net/op_error.h"

#include <sys/socket.h>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "net/net_impl.h"
#include "rill/net.h"

namespace rill::detail {
namespace {

bool is_system_error(int err) { return err < 0 && err > -10000; }

int finish(int n) { return n < 0 ? RILL_EINVAL : n; }

// What Go's AddrError names for a malformed `address`: the port for a bad
// port, "<network>/<port>" for a port that is not a number (Go looked it up
// as a service), the host for one of the wrong family, else all of it.
void addr_error_subject(const char *network, const char *address, int err, char *out, size_t size) {
  const char *colon = std::strrchr(address, ':');
  if ((err == RILL_EADDR_PORT || err == RILL_EADDR_SERVICE) && colon) {
    if (err == RILL_EADDR_PORT)
      std::snprintf(out, size, "%s", colon + 1);
    else
      std::snprintf(out, size, "%s/%s", network, colon + 1);
    return;
  }
  if (err == RILL_EADDR_FAMILY && colon) {
    const char *host = address;
    size_t len = static_cast<size_t>(colon - address);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
      host++;
      len -= 2;
    }
    std::snprintf(out, size, "%.*s", static_cast<int>(len), host);
    return;
  }
  std::snprintf(out, size, "%s", address);
}

// The address as Go prints the one it resolved: ":8888" for every local
// address, the canonical form of a numeric one ("127.0.0.1:80" for
// "127.0.0.1:080"), a name or a Unix path as written.
void op_address(net_kind kind, const char *address, char *out, size_t size) {
  sockaddr_storage ss;
  socklen_t len;
  char host[256], zone[64];
  int port = 0;
  if (is_tcp(kind) && split_host_port(address, host, sizeof host, zone, sizeof zone, &port) == 0 &&
      host[0] == '\0') {
    std::snprintf(out, size, ":%d", port);
    return;
  }
  if (is_tcp(kind) && parse_address(kind, address, &ss, &len) == 0 &&
      format_address(reinterpret_cast<sockaddr *>(&ss), len, out, size) > 0)
    return;
  std::snprintf(out, size, "%s", address);
}

// The system call Go names for an error rill_listen() returned: socket()'s
// own failures, else bind()'s (where nearly every listen error comes from).
const char *listen_call(int err) {
  switch (-err) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT:
      return "socket";
    case ENOMEM:
      return nullptr;
    default:
      return "bind";
  }
}

}  // namespace

int format_conn_error(char *buf, size_t size, const char *op, const char *network, const char *local,
                      const char *remote, int err) {
  if (!op)
    return RILL_EINVAL;
  const char *call = nullptr;
  // Go's setters name the connection two ways: the no-delay, keep-alive and
  // linger setters both addresses, the buffer and deadline setters only the
  // local one (as the address, not the source).
  bool local_only = !std::strcmp(op, "set_deadline") || !std::strcmp(op, "set_read_buffer") ||
                    !std::strcmp(op, "set_write_buffer");
  bool setter = local_only || !std::strcmp(op, "set") || !std::strcmp(op, "set_no_delay") ||
                !std::strcmp(op, "set_keep_alive") || !std::strcmp(op, "set_linger");
  const char *shown = op;
  if (setter) {
    shown = "set";
    call = "setsockopt";
  } else if (!std::strcmp(op, "close_write")) {
    shown = "close";
    call = "shutdown";
  } else if (!std::strcmp(op, "read") || !std::strcmp(op, "write")) {
    call = op;
  }
  if (!is_system_error(err))
    call = nullptr;
  if (local && !local[0])
    local = nullptr;
  if (remote && !remote[0])
    remote = nullptr;
  if (local_only)
    return rill_format_op_error(shown, network, nullptr, local, call, err, buf, size);
  return rill_format_op_error(shown, network, local, remote, call, err, buf, size);
}

int format_listener_error(char *buf, size_t size, const char *op, const char *network,
                          const char *address, int err) {
  if (!op)
    return RILL_EINVAL;
  const char *shown = op;
  const char *call = nullptr;
  if (!std::strcmp(op, "accept"))
    call = "accept4";  // the call Go makes (and rill) on Linux
  else if (!std::strncmp(op, "set", 3))
    shown = "set", call = "setsockopt";
  if (!is_system_error(err) || err == RILL_ENOMEM)
    call = nullptr;
  return rill_format_op_error(shown, network, nullptr, address && address[0] ? address : nullptr, call,
                              err, buf, size);
}

}  // namespace rill::detail

using namespace rill::detail;

extern "C" int rill_format_op_error(const char *op, const char *network, const char *local,
                                    const char *remote, const char *call, int err, char *buf, size_t size) {
  if ((!buf && size) || !op || !network)
    return RILL_EINVAL;
  if (err == RILL_EOF)  // Go hands io.EOF back as it is, never wrapped
    return finish(std::snprintf(buf, size, "EOF"));
  const char *arrow = local && remote ? "->" : "";
  const char *space = local || remote ? " " : "";
  const char *net_space = network[0] ? " " : "";  // Go leaves out an empty network
  return finish(std::snprintf(buf, size, "%s%s%s%s%s%s%s: %s%s%s", op, net_space, network, space,
                              local ? local : "", arrow, remote ? remote : "", call ? call : "",
                              call ? ": " : "", rill_strerror(err)));
}

extern "C" int rill_format_net_error(const char *op, const char *network, const char *address, int err,
                                     char *buf, size_t size) {
  if ((!buf && size) || !op || !network || !address)
    return RILL_EINVAL;
  if (err == RILL_EUNKNOWN_NETWORK)  // Go: "dial tcp7: unknown network tcp7"
    return finish(std::snprintf(buf, size, "%s%s%s: %s %s", op, network[0] ? " " : "", network,
                                rill_strerror(err), network));
  net_kind kind;
  if (parse_network(network, &kind) != 0)
    return rill_format_op_error(op, network, nullptr, address[0] ? address : nullptr, nullptr, err, buf,
                                size);
  if (err == RILL_EADDR_MISSING)  // Go: "dial tcp: missing address"
    return rill_format_op_error(op, network, nullptr, nullptr, nullptr, err, buf, size);
  if (RILL_IS_ADDR_ERROR(err)) {  // Go: "dial tcp: address 1.2.3.4: missing port in address"
    char subject[RILL_ADDRSTRLEN + 16];
    addr_error_subject(network, address, err, subject, sizeof subject);
    return finish(std::snprintf(buf, size, "%s %s: address %s: %s", op, network, subject,
                                rill_strerror(err)));
  }
  if (is_tcp(kind) && (RILL_IS_DNS_ERROR(err) || err == RILL_ENEEDDNS)) {
    // A name refused before any query: Go's "dial tcp: lookup bad..name: ..."
    char host[256], zone[64];
    int port;
    if (split_host_port(address, host, sizeof host, zone, sizeof zone, &port) == 0)
      return finish(std::snprintf(buf, size, "%s %s: lookup %s: %s", op, network, host, rill_strerror(err)));
  }
  char shown[RILL_ADDRSTRLEN];
  op_address(kind, address, shown, sizeof shown);
  const char *call = nullptr;
  if (is_system_error(err))
    call = !std::strcmp(op, "listen") ? listen_call(err) : err == RILL_ENOMEM ? nullptr : "connect";
  return rill_format_op_error(op, network, nullptr, shown, call, err, buf, size);
}
