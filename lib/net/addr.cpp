// Go-style address parsing and formatting (G6).
//
// "host:port" splits at the last colon; an IPv6 host must be bracketed, and
// may carry a zone ("[fe80::1%lo]"), which becomes the scope id. The port is
// decimal, 0-65535; empty means 0. A host that is not a number is left to
// DNS (RILL_ENEEDDNS) so this file never blocks.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "net/net_impl.h"

namespace rill::detail {

int parse_network(const char *network, net_kind *out) {
  if (!network)
    return RILL_EINVAL;
  static const struct {
    const char *name;
    net_kind kind;
  } known[] = {{"tcp", net_kind::tcp}, {"tcp4", net_kind::tcp4}, {"tcp6", net_kind::tcp6},
               {"unix", net_kind::unix_stream}};
  for (const auto &k : known)
    if (std::strcmp(network, k.name) == 0) {
      *out = k.kind;
      return 0;
    }
  return RILL_EUNKNOWN_NETWORK;
}

namespace {

// The port after the last colon: decimal digits, 0-65535, empty meaning 0,
// a '+' allowed in front (as Go allows). Go reads a '-' or a number out of
// range as "invalid port", and anything else as a service name; rill knows
// no service names ("unknown port").
int parse_port(const char *p, int *port) {
  bool sign = (*p == '+' || *p == '-') && p[1] >= '0' && p[1] <= '9';
  long value = 0;
  for (const char *q = sign ? p + 1 : p; *q; q++) {
    if (*q < '0' || *q > '9')
      return RILL_EADDR_SERVICE;
    if (value <= 65535)
      value = value * 10 + (*q - '0');
  }
  if ((sign && *p == '-' && value != 0) || value > 65535)
    return RILL_EADDR_PORT;
  *port = static_cast<int>(value);
  return 0;
}

}  // namespace

// Splits "host:port" as Go's SplitHostPort does, with its error for each
// malformed shape, then reads the port. Returns 0 or an RILL_EADDR_* code
// (RILL_EINVAL for a host or zone too long for the buffers).
int split_host_port(const char *address, char *host, size_t host_size, char *zone,
                    size_t zone_size, int *port) {
  const char *colon = std::strrchr(address, ':');
  if (!colon)
    return RILL_EADDR_NOPORT;  // "1.2.3.4"
  const char *h = address;
  size_t hlen = static_cast<size_t>(colon - address);
  const char *after_host = address;  // where '[' may no longer appear
  const char *after_close = address; // where ']' may no longer appear
  zone[0] = '\0';
  if (address[0] == '[') {
    const char *close = std::strchr(address, ']');
    if (!close)
      return RILL_EADDR_NOBRACKET;  // "[::1:80", "[::1"
    if (close + 1 != colon)         // "[::1]", "[::1]x:80", "[::1]:80:1"
      return close[1] == ':' ? RILL_EADDR_COLONS : RILL_EADDR_NOPORT;
    h = address + 1;
    hlen = static_cast<size_t>(close - h);
    after_host = address + 1;
    after_close = close + 1;
  } else if (std::memchr(h, ':', hlen)) {
    return RILL_EADDR_COLONS;  // "::1:80": an IPv6 host needs brackets
  }
  if (std::strchr(after_host, '['))
    return RILL_EADDR_OPENBRACKET;  // "a[b:80"
  if (std::strchr(after_close, ']'))
    return RILL_EADDR_CLOSEBRACKET;  // "a]b:80", "]:80"
  if (address[0] == '[') {
    const char *pct = static_cast<const char *>(std::memchr(h, '%', hlen));
    if (pct) {
      size_t zlen = hlen - static_cast<size_t>(pct - h) - 1;
      if (zlen == 0 || zlen >= zone_size)
        return RILL_EINVAL;
      std::memcpy(zone, pct + 1, zlen);
      zone[zlen] = '\0';
      hlen = static_cast<size_t>(pct - h);
    }
  }
  if (hlen >= host_size)
    return RILL_EINVAL;
  std::memcpy(host, h, hlen);
  host[hlen] = '\0';
  return parse_port(colon + 1, port);
}

namespace {

int parse_unix(const char *address, sockaddr_storage *out, socklen_t *len) {
  auto *un = reinterpret_cast<sockaddr_un *>(out);
  size_t n = std::strlen(address);
  if (n == 0)
    return RILL_EADDR_MISSING;
  if (n >= sizeof un->sun_path)
    return RILL_EINVAL;
  std::memset(un, 0, sizeof *un);
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, address, n);
#ifdef __linux__
  if (address[0] == '@') {
    // Linux's abstract namespace: a leading NUL, and the length says where
    // the name ends.
    un->sun_path[0] = '\0';
    *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n);
    return 0;
  }
#endif
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n + 1);
  return 0;
}

// A zone is an interface name or the decimal index of one: digits only (no
// sign, no space), and within the 32 bits of sin6_scope_id, so
// "%4294967297" cannot wrap around to interface 1.
int parse_zone(const char *zone, uint32_t *index) {
  if (unsigned named = if_nametoindex(zone)) {
    *index = named;
    return 0;
  }
  uint64_t value = 0;
  for (const char *p = zone; *p; p++) {
    if (*p < '0' || *p > '9')
      return RILL_EINVAL;
    value = value * 10 + static_cast<uint64_t>(*p - '0');
    if (value > UINT32_MAX)
      return RILL_EINVAL;
  }
  if (zone[0] == '\0')
    return RILL_EINVAL;
  *index = static_cast<uint32_t>(value);
  return 0;
}

}  // namespace

int parse_address(net_kind kind, const char *address, sockaddr_storage *out, socklen_t *len) {
  if (!address || !out || !len)
    return RILL_EINVAL;
  std::memset(out, 0, sizeof *out);
  if (kind == net_kind::unix_stream)
    return parse_unix(address, out, len);
  if (address[0] == '\0')
    return RILL_EADDR_MISSING;

  char host[256], zone[IF_NAMESIZE + 1];  // a name may be 253 bytes
  int port;
  int err = split_host_port(address, host, sizeof host, zone, sizeof zone, &port);
  if (err)
    return err;
  auto *in4 = reinterpret_cast<sockaddr_in *>(out);
  auto *in6 = reinterpret_cast<sockaddr_in6 *>(out);
  if (host[0] == '\0') {
    // Every local address: IPv6's wildcard covers both families on a
    // dual-stack socket.
    if (kind == net_kind::tcp4 || (kind == net_kind::tcp && !ipv6_available())) {
      in4->sin_family = AF_INET;
      in4->sin_port = htons(static_cast<uint16_t>(port));
      *len = sizeof *in4;
    } else {
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(static_cast<uint16_t>(port));
      *len = sizeof *in6;
    }
    return 0;
  }
  if (zone[0] == '\0' && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    if (kind == net_kind::tcp6)
      return RILL_EADDR_FAMILY;
    in4->sin_family = AF_INET;
    in4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof *in4;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    if (kind == net_kind::tcp4)
      return RILL_EADDR_FAMILY;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    if (zone[0]) {
      uint32_t index;
      if ((err = parse_zone(zone, &index)) != 0)
        return err;
      in6->sin6_scope_id = index;
    }
    *len = sizeof *in6;
    return 0;
  }
  if (zone[0] || std::strchr(address, '[')) {
    return RILL_EINVAL;  // brackets around something that is not IPv6
  }
  return RILL_ENEEDDNS;
}

// The bytes a family's address needs before it can be formatted; 0 for a
// family rill does not format.
static size_t family_min_len(sa_family_t family) {
  switch (family) {
    case AF_INET:
      return sizeof(sockaddr_in);
    case AF_INET6:
      return sizeof(sockaddr_in6);
    case AF_UNIX:
      return offsetof(sockaddr_un, sun_path);
    default:
      return 0;
  }
}

// Reads only the `len` bytes the caller vouches for: the family first, and
// the rest only once `len` covers the whole structure of that family.
int format_address(const sockaddr *sa, socklen_t len, char *buf, size_t size) {
  if (!sa || !buf || size == 0 || len < sizeof(sa_family_t))
    return RILL_EINVAL;
  sa_family_t family;
  std::memcpy(&family, reinterpret_cast<const char *>(sa) + offsetof(sockaddr, sa_family),
              sizeof family);
  size_t need = family_min_len(family);
  if (need == 0)
    return RILL_EAFNOSUPPORT;
  if (len < need)
    return RILL_EINVAL;
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  int n;
  switch (family) {
    case AF_INET: {
      auto *in4 = reinterpret_cast<const sockaddr_in *>(sa);
      inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
      n = std::snprintf(buf, size, "%s:%u", host, ntohs(in4->sin_port));
      break;
    }
    case AF_INET6: {
      auto *in6 = reinterpret_cast<const sockaddr_in6 *>(sa);
      inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
      char zone[IF_NAMESIZE + 12] = "";
      if (in6->sin6_scope_id) {
        char name[IF_NAMESIZE];
        if (if_indextoname(in6->sin6_scope_id, name))
          std::snprintf(zone, sizeof zone, "%%%s", name);
        else
          std::snprintf(zone, sizeof zone, "%%%u", static_cast<unsigned>(in6->sin6_scope_id));
      }
      n = std::snprintf(buf, size, "[%s%s]:%u", host, zone, ntohs(in6->sin6_port));
      break;
    }
    default: {  // AF_UNIX: the path is whatever `len` covers past the family
      const char *path = reinterpret_cast<const char *>(sa) + offsetof(sockaddr_un, sun_path);
      // Never past sun_path either: a longer `len` adds nothing a path can hold.
      size_t path_len = len - offsetof(sockaddr_un, sun_path);
      if (path_len > sizeof(sockaddr_un::sun_path))
        path_len = sizeof(sockaddr_un::sun_path);
      if (path_len == 0) {
        // An unnamed socket (a client that never bound): Go shows "@".
        n = std::snprintf(buf, size, "@");
      } else if (path[0] == '\0') {
        // Linux's abstract namespace: "@name", the name running to `len`.
        size_t name_len = strnlen(path + 1, path_len - 1);
        n = std::snprintf(buf, size, "@%.*s", static_cast<int>(name_len), path + 1);
      } else {
        size_t plen = strnlen(path, path_len);
        n = std::snprintf(buf, size, "%.*s", static_cast<int>(plen), path);
      }
      break;
    }
  }
  return n < 0 ? RILL_EINVAL : (static_cast<size_t>(n) >= size ? RILL_EINVAL : n);
}

}  // namespace rill::detail

extern "C" int rill_addr_parse(const char *network, const char *address, struct sockaddr_storage *out,
                               socklen_t *out_len) {
  rill::detail::net_kind kind;
  int err = rill::detail::parse_network(network, &kind);
  if (err)
    return err;
  return rill::detail::parse_address(kind, address, out, out_len);
}

extern "C" int rill_addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size) {
  return rill::detail::format_address(sa, len, buf, size);
}
