// Answers from the hosts file and for "localhost", before DNS is asked.
#ifndef RILL_DNS_HOSTS_H
#define RILL_DNS_HOSTS_H

#include <sys/socket.h>

#include <cstddef>

#include "core/vec.h"

namespace rill::detail {

// The longest hosts-file line read, in bytes without the newline. A longer
// line, or one holding a NUL byte, is skipped whole: no real entry is that
// long, and reading part of it could turn text inside a comment into an
// entry.
constexpr size_t hosts_max_line = 64 * 1024;

// What separates the fields of a line.
constexpr const char *hosts_blanks = " \t\r";

// Appends the addresses the hosts file at `path` lists for `name` (within
// `family`) and returns true if it names the host; `canonical` gets the first
// name of the first matching line. A missing file names nothing. Lines are
// read whole, whatever their length (up to hosts_max_line), and text after a
// '#' is a comment.
bool hosts_lookup(const char *path, const char *name, int family, vec<sockaddr_storage> &out,
                  char *canonical, size_t canonical_size);

// "localhost" and "*.localhost" (RFC 6761): the loopback addresses.
bool localhost_lookup(const char *name, int family, vec<sockaddr_storage> &out);

// A numeric IPv4 or IPv6 address (no port, no brackets).
bool numeric_lookup(const char *name, int family, vec<sockaddr_storage> &out, bool *wrong_family);

}  // namespace rill::detail

#endif
