#include "dns/hosts.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <cstdio>
#include <cstring>

namespace rill::detail {
namespace {

// Parses a numeric address into `ss`; returns its family or 0.
int parse_numeric(const char *text, sockaddr_storage *ss) {
  std::memset(ss, 0, sizeof *ss);
  auto *in4 = reinterpret_cast<sockaddr_in *>(ss);
  auto *in6 = reinterpret_cast<sockaddr_in6 *>(ss);
  if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    return AF_INET;
  }
  if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    return AF_INET6;
  }
  return 0;
}

bool family_ok(int want, int have) { return want == AF_UNSPEC || want == have; }

// Case-insensitive name equality, ignoring one trailing dot on either side.
bool same_name(const char *a, const char *b) {
  size_t la = std::strlen(a), lb = std::strlen(b);
  if (la && a[la - 1] == '.')
    la--;
  if (lb && b[lb - 1] == '.')
    lb--;
  return la == lb && strncasecmp(a, b, la) == 0;
}

}  // namespace

bool numeric_lookup(const char *name, int family, vec<sockaddr_storage> &out, bool *wrong_family) {
  sockaddr_storage ss;
  int have = parse_numeric(name, &ss);
  *wrong_family = have && !family_ok(family, have);
  if (!have || *wrong_family)
    return have != 0;
  out.push(ss);
  return true;
}

bool localhost_lookup(const char *name, int family, vec<sockaddr_storage> &out) {
  size_t len = std::strlen(name);
  if (len && name[len - 1] == '.')
    len--;
  static const char suffix[] = ".localhost";
  bool is_local = (len == 9 && strncasecmp(name, "localhost", 9) == 0) ||
                  (len > sizeof suffix - 1 &&
                   strncasecmp(name + len - (sizeof suffix - 1), suffix, sizeof suffix - 1) == 0);
  if (!is_local)
    return false;
  sockaddr_storage ss;
  if (family_ok(family, AF_INET6)) {
    parse_numeric("::1", &ss);
    out.push(ss);
  }
  if (family_ok(family, AF_INET)) {
    parse_numeric("127.0.0.1", &ss);
    out.push(ss);
  }
  return true;
}

namespace {

// Reads the next line (without its newline) into `line`, NUL-terminated.
// Returns false at the end of the file. A line longer than hosts_max_line,
// one holding a NUL byte, or one that memory cannot hold comes back empty:
// it is skipped whole, so no part of it is ever read as an entry.
bool read_line(FILE *f, vec<char> &line) {
  line.clear();
  bool usable = true;
  int ch;
  while ((ch = getc_unlocked(f)) != EOF && ch != '\n') {
    if (!usable)
      continue;
    if (ch == '\0' || line.size() >= hosts_max_line || !line.reserve(line.size() + 2)) {
      usable = false;
      continue;
    }
    line.push(static_cast<char>(ch));
  }
  if (ch == EOF && line.empty() && usable)
    return false;
  if (!usable)
    line.clear();
  if (line.reserve(line.size() + 1))
    line.push('\0');
  return true;
}

}  // namespace

bool hosts_lookup(const char *path, const char *name, int family, vec<sockaddr_storage> &out,
                  char *canonical, size_t canonical_size) {
  FILE *f = std::fopen(path, "re");
  if (!f)
    return false;
  bool named = false;
  vec<char> buf;
  while (read_line(f, buf)) {
    if (buf.empty())
      continue;  // out of memory even for the terminator: nothing to parse
    char *line = buf.data();
    if (char *hash = std::strchr(line, '#'))
      *hash = '\0';
    char *save = nullptr;
    char *addr = strtok_r(line, hosts_blanks, &save);
    if (!addr)
      continue;
    sockaddr_storage ss;
    int have = parse_numeric(addr, &ss);
    const char *first = nullptr;
    for (char *n = strtok_r(nullptr, hosts_blanks, &save); n; n = strtok_r(nullptr, hosts_blanks, &save)) {
      if (!first)
        first = n;
      if (!same_name(n, name))
        continue;
      if (!named && canonical_size)
        std::snprintf(canonical, canonical_size, "%s", first);
      named = true;
      if (have && family_ok(family, have))
        out.push(ss);
      break;
    }
  }
  std::fclose(f);
  return named;
}

}  // namespace rill::detail
