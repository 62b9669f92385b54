// libFuzzer target: the hosts-file reader (lib/dns/hosts.cpp) against a
// reference reader written here as plainly as possible: the input is the
// whole file; every word in it (and a few fixed names) is looked up in
// both, for every family, and both must give the same answer: whether the
// name is listed, the addresses in order, and the canonical name.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "dns/hosts.h"

namespace {

struct reference_answer {
  bool named = false;
  std::vector<sockaddr_storage> addrs;
  std::string canonical;
};

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::vector<std::string> words_of(const std::string &text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (is_blank(c)) {
      if (!word.empty())
        words.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty())
    words.push_back(word);
  return words;
}

// Whole lines: split at '\n'; a line longer than the limit or holding a NUL
// byte is not a line at all.
std::vector<std::string> usable_lines(const std::string &file) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < file.size()) {
    size_t end = file.find('\n', start);
    if (end == std::string::npos)
      end = file.size();
    std::string line = file.substr(start, end - start);
    if (line.size() <= rill::detail::hosts_max_line && line.find('\0') == std::string::npos)
      lines.push_back(line.substr(0, line.find('#')));
    start = end + 1;
  }
  return lines;
}

std::string without_one_dot(const std::string &s) {
  return !s.empty() && s.back() == '.' ? s.substr(0, s.size() - 1) : s;
}

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool same_name(const std::string &a, const std::string &b) {
  std::string x = without_one_dot(a), y = without_one_dot(b);
  if (x.size() != y.size())
    return false;
  for (size_t i = 0; i < x.size(); i++)
    if (ascii_lower(x[i]) != ascii_lower(y[i]))
      return false;
  return true;
}

int numeric(const std::string &text, sockaddr_storage *ss) {
  std::memset(ss, 0, sizeof *ss);
  auto *in4 = reinterpret_cast<sockaddr_in *>(ss);
  auto *in6 = reinterpret_cast<sockaddr_in6 *>(ss);
  if (inet_pton(AF_INET, text.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    return AF_INET;
  }
  if (inet_pton(AF_INET6, text.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    return AF_INET6;
  }
  return 0;
}

reference_answer reference_lookup(const std::vector<std::string> &lines, const std::string &name,
                                  int family, size_t canonical_size) {
  reference_answer answer;
  for (const std::string &line : lines) {
    std::vector<std::string> words = words_of(line);
    if (words.size() < 2)
      continue;
    bool listed = false;
    for (size_t i = 1; i < words.size(); i++)
      listed = listed || same_name(words[i], name);
    if (!listed)
      continue;
    if (!answer.named)
      answer.canonical = words[1].substr(0, canonical_size - 1);
    answer.named = true;
    sockaddr_storage ss;
    int have = numeric(words[0], &ss);
    if (have && (family == AF_UNSPEC || family == have))
      answer.addrs.push_back(ss);
  }
  return answer;
}

[[noreturn]] void fail(const char *what, const std::string &name, int family) {
  __builtin_printf("fuzz_hosts: %s for [%s], family %d\n", what, name.c_str(), family);
  std::abort();
}

// The hosts file lives in memory (memfd), reached by its /proc path: a
// file on disk rewritten thousands of times a second waits for the disk
// (ext4 flushes a truncated file on close).
struct memory_file {
  int fd = -1;
  std::string path;
  memory_file() {
    fd = memfd_create("rill-fuzz-hosts", MFD_CLOEXEC);
    if (fd < 0)
      std::abort();
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  void fill(const uint8_t *data, size_t size) {
    if (ftruncate(fd, 0) < 0 || (size && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)))
      std::abort();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static memory_file hosts;
  hosts.fill(data, size);
  const std::string &path = hosts.path;
  std::string file(reinterpret_cast<const char *>(data), size);

  std::vector<std::string> lines = usable_lines(file);
  // The names asked: words of usable lines, then words the reference
  // reader drops (inside comments, over-long or NUL lines), which must stay
  // unlisted, and two fixed ones. A handful is enough: each lookup reads
  // the whole file.
  std::set<std::string> names = {"localhost", "A."};
  for (const std::string &line : lines)
    for (const std::string &w : words_of(line))
      if (names.size() < 8)
        names.insert(w);
  for (const std::string &w : words_of(file))
    if (names.size() < 12 && w.find('\0') == std::string::npos)
      names.insert(w.substr(0, w.find('#')));

  // Every family would triple the reads: AF_UNSPEC, and one more by turns.
  const int families[] = {AF_UNSPEC, size % 2 ? AF_INET : AF_INET6};
  const size_t canonical_size = 16;  // small, so truncation is exercised
  for (const std::string &name : names) {
    for (int family : families) {
      rill::detail::vec<sockaddr_storage> got;
      char canonical[canonical_size] = "";
      bool named = rill::detail::hosts_lookup(path.c_str(), name.c_str(), family, got, canonical,
                                              sizeof canonical);
      reference_answer want = reference_lookup(lines, name, family, canonical_size);
      if (named != want.named)
        fail(named ? "listed, the reference says not" : "not listed, the reference says listed", name,
             family);
      if (got.size() != want.addrs.size())
        fail("a different number of addresses", name, family);
      for (size_t i = 0; i < got.size(); i++)
        if (std::memcmp(&got[i], &want.addrs[i], sizeof(sockaddr_storage)) != 0)
          fail("a different address", name, family);
      if (named && want.canonical != canonical)
        fail("a different canonical name", name, family);
    }
  }
  return 0;
}
