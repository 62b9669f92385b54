// What counts as a host name, checked before any query is sent: at most 253
// bytes, labels of 1-63 bytes separated by dots (one trailing dot allowed),
// letters, digits, '-' and '_' (which real names use, as Go allows).
#include <cstdio>
#include <cstring>

#include "rill/dns.h"

extern "C" int rill_dns_check_name(const char *host) {
  if (!host)
    return RILL_EINVAL;
  size_t len = std::strlen(host);
  if (len > 0 && host[len - 1] == '.')
    len--;  // the root label
  if (len == 0 || len > 253)
    return RILL_EDNS_BADNAME;
  size_t label = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = static_cast<unsigned char>(host[i]);
    if (ch == '.') {
      if (label == 0)
        return RILL_EDNS_BADNAME;  // an empty label: "a..b", ".a"
      label = 0;
      continue;
    }
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_';
    if (!ok || ++label > 63)
      return RILL_EDNS_BADNAME;
  }
  return label == 0 ? RILL_EDNS_BADNAME : 0;  // "a.b.." ends in an empty label
}

// Go's DNSError text: "lookup NAME on SERVER: ERR". A timeout or an
// unreachable server is, in Go, the error of its read from the server's UDP
// socket ("read udp 127.0.0.1:40000->127.0.0.1:53: i/o timeout"); c-ares
// keeps that socket to itself, so rill names the server and leaves the
// local address out.
extern "C" int rill_format_lookup_error(const char *name, const char *server, int err, char *buf,
                                        size_t size) {
  if ((!buf && size) || !name)
    return RILL_EINVAL;
  int n;
  if (!server || !server[0])
    n = std::snprintf(buf, size, "lookup %s: %s", name, rill_strerror(err));
  else if (err == RILL_EDNS_TIMEOUT)
    n = std::snprintf(buf, size, "lookup %s on %s: read udp %s: %s", name, server, server, rill_strerror(err));
  else if (err == RILL_EDNS_UNREACHABLE)
    n = std::snprintf(buf, size, "lookup %s on %s: read udp %s: read: %s", name, server, server,
                      rill_strerror(err));
  else
    n = std::snprintf(buf, size, "lookup %s on %s: %s", name, server, rill_strerror(err));
  return n < 0 ? RILL_EINVAL : n;
}
