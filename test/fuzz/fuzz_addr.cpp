// libFuzzer target: the address parser and formatter (rill_addr_parse,
// rill_addr_format).
//
// Input, first byte `mode`:
//  - mode < 0x80: parse the rest (up to a NUL) as an address of network
//    mode % 4 (tcp, tcp4, tcp6, unix). Whatever parses must format, and the
//    formatted text must parse back to the very same socket address (the
//    round trip).
//  - mode >= 0x80: the rest, after one byte giving the output size, is a
//    raw socket address exactly that many bytes long, in a heap block of
//    that size, so AddressSanitizer reports any read past `len`. A format
//    that succeeds writes a NUL-terminated text shorter than the buffer, and
//    format(parse(text)) gives the text again.
#include <sys/socket.h>
#include <sys/un.h>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "rill.h"

namespace {

const char *const networks[] = {"tcp", "tcp4", "tcp6", "unix"};

[[noreturn]] void fail(const char *what, const std::string &detail) {
  __builtin_printf("fuzz_addr: %s: [%s]\n", what, detail.c_str());
  std::abort();
}

// Formats into a heap buffer of exactly `size` bytes; checks the result.
int format_exact(const sockaddr *sa, socklen_t len, size_t size, std::string *text) {
  std::vector<char> out(size ? size : 1);
  char *buf = size ? out.data() : nullptr;
  int rc = rill_addr_format(sa, len, buf, size);
  if (rc >= 0) {
    if (static_cast<size_t>(rc) >= size || std::strlen(buf) != static_cast<size_t>(rc))
      fail("format returned a length that does not match its text", std::string(buf, size));
    text->assign(buf, static_cast<size_t>(rc));
  } else if (rc != RILL_EINVAL && rc != RILL_EAFNOSUPPORT) {
    fail("format returned an undocumented code", rill_err_name(rc));
  }
  return rc;
}

void round_trip(const char *network, const std::string &address) {
  sockaddr_storage first;
  socklen_t first_len = 0;
  int rc = rill_addr_parse(network, address.c_str(), &first, &first_len);
  if (rc != 0) {
    if (rc != RILL_EINVAL && rc != RILL_ENEEDDNS && !RILL_IS_ADDR_ERROR(rc))
      fail("parse returned an undocumented code", rill_err_name(rc));
    // Go's wording of the error, into a buffer of exactly the size it needs.
    int need = rill_format_net_error("dial", network, address.c_str(), rc, nullptr, 0);
    if (need <= 0)
      fail("no text for a parse error", address);
    std::vector<char> text(static_cast<size_t>(need) + 1);
    if (rill_format_net_error("dial", network, address.c_str(), rc, text.data(), text.size()) != need ||
        std::strlen(text.data()) != static_cast<size_t>(need))
      fail("the error text's length changed", address);
    return;
  }
  if (first_len == 0 || first_len > sizeof first)
    fail("parse gave an impossible length", address);
  // Exactly first_len bytes on the heap: format must not read past them.
  std::vector<unsigned char> exact(reinterpret_cast<unsigned char *>(&first),
                                   reinterpret_cast<unsigned char *>(&first) + first_len);
  std::string text;
  rc = format_exact(reinterpret_cast<const sockaddr *>(exact.data()), first_len, RILL_ADDRSTRLEN, &text);
  if (rc < 0)
    fail("a parsed address does not format", address);
  sockaddr_storage second;
  socklen_t second_len = 0;
  rc = rill_addr_parse(network, text.c_str(), &second, &second_len);
  if (rc != 0)
    fail("the formatted address does not parse", address + " -> " + text);
  if (second_len != first_len || std::memcmp(&first, &second, first_len) != 0)
    fail("parse -> format -> parse changed the address", address + " -> " + text);
}

void raw_format(const uint8_t *data, size_t size) {
  if (size < 1)
    return;
  size_t out_size = data[0];
  data++, size--;
  // A heap block of exactly `size` bytes (malloc(0) may return NULL: pass
  // a one-byte block then, and still say len 0).
  unsigned char *raw = static_cast<unsigned char *>(std::malloc(size ? size : 1));
  if (size)
    std::memcpy(raw, data, size);
  std::string text;
  int rc = format_exact(reinterpret_cast<const sockaddr *>(raw), static_cast<socklen_t>(size),
                        out_size, &text);
  sa_family_t family = 0;
  if (size >= sizeof family)
    std::memcpy(&family, raw, sizeof family);
  std::free(raw);
  if (rc < 0)
    return;
  // format(parse(text)) == text, except where the text cannot be told
  // apart or held: an unnamed or over-long Unix path, or a path that
  // itself begins with '@' (it reads back as an abstract name).
  const char *network = family == AF_UNIX ? "unix" : "tcp";
  if (family == AF_UNIX && (text.empty() || text.size() >= sizeof(sockaddr_un::sun_path) ||
                            (text[0] == '@' && size > offsetof(sockaddr_un, sun_path) &&
                             data[offsetof(sockaddr_un, sun_path)] != '\0')))
    return;
  sockaddr_storage ss;
  socklen_t len;
  if (rill_addr_parse(network, text.c_str(), &ss, &len) != 0)
    fail("a formatted address does not parse", text);
  std::string again;
  if (format_exact(reinterpret_cast<const sockaddr *>(&ss), len, RILL_ADDRSTRLEN, &again) < 0 ||
      again != text)
    fail("format(parse(text)) differs from text", text + " -> " + again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  uint8_t mode = data[0];
  if (mode & 0x80) {
    raw_format(data + 1, size - 1);
    return 0;
  }
  const char *rest = reinterpret_cast<const char *>(data + 1);
  std::string address(rest, strnlen(rest, size - 1));
  round_trip(networks[mode % 4], address);
  return 0;
}
