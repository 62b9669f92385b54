// Answers from the hosts file and for "localhost", before DNS is asked.
#ifndef RILL_DNS_HOSTS_H
#define RILL_DNS_HOSTS_H

#include <sys/socket.h>

#include "core/vec.h"

namespace rill::detail {

// Appends the addresses the hosts file at `path` lists for `name` (within
// `family`) and returns true if it names the host; `canonical` gets the first
// name of the first matching line. A missing file names nothing.
bool hosts_lookup(const char *path, const char *name, int family, vec<sockaddr_storage> &out,
                  char *canonical, size_t canonical_size);

// "localhost" and "*.localhost" (RFC 6761): the loopback addresses.
bool localhost_lookup(const char *name, int family, vec<sockaddr_storage> &out);

// A numeric IPv4 or IPv6 address (no port, no brackets).
bool numeric_lookup(const char *name, int family, vec<sockaddr_storage> &out, bool *wrong_family);

}  // namespace rill::detail

#endif
