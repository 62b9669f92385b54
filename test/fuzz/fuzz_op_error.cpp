// libFuzzer target: the error formatters (rill_format_op_error,
// rill_strerror, rill_err_name) with arbitrary operations, addresses, codes
// and buffer sizes. rill_format_op_error must behave as snprintf: never a
// byte past `size` (the buffer is a heap block of exactly `size` bytes, so
// AddressSanitizer sees any overflow), a NUL at the end whenever size > 0,
// and the full length returned. The expected text is built here by plain
// string concatenation, independently of snprintf.
//
// Input: [flags][err: 4 bytes][size: 2 bytes] then up to five fields
// separated by NUL bytes: op, network, local, remote, call. Bit i of
// `flags` makes field i NULL.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "rill.h"

namespace {

[[noreturn]] void fail(const char *what, const std::string &detail) {
  __builtin_printf("fuzz_op_error: %s: [%s]\n", what, detail.c_str());
  std::abort();
}

std::string expected(const char *op, const char *network, const char *local, const char *remote,
                     const char *call, int err) {
  if (err == RILL_EOF)  // Go's io.EOF, never wrapped
    return "EOF";
  std::string s = std::string(op) + (network[0] ? " " : "") + network;  // Go drops an empty network
  if (local || remote)
    s += " ";
  if (local)
    s += local;
  if (local && remote)
    s += "->";
  if (remote)
    s += remote;
  s += ": ";
  if (call)
    s += std::string(call) + ": ";
  return s + rill_strerror(err);
}

void check_code_texts(int err) {
  const char *text = rill_strerror(err);
  const char *name = rill_err_name(err);
  if (!text || !name || !text[0] || !name[0])
    fail("a code without a text or a name", std::to_string(err));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 7)
    return 0;
  uint8_t flags = data[0];
  int32_t err;
  std::memcpy(&err, data + 1, sizeof err);
  size_t out_size = static_cast<size_t>(data[5]) | static_cast<size_t>(data[6]) << 8;
  check_code_texts(err);

  // The fields: strings cut at NUL bytes, the last one running to the end.
  std::vector<std::string> fields;
  const char *p = reinterpret_cast<const char *>(data + 7);
  const char *end = reinterpret_cast<const char *>(data + size);
  while (fields.size() < 5 && p <= end) {
    const char *nul = static_cast<const char *>(std::memchr(p, '\0', static_cast<size_t>(end - p)));
    const char *stop = nul ? nul : end;
    fields.emplace_back(p, stop);
    p = stop + 1;
  }
  fields.resize(5);
  const char *arg[5];
  for (int i = 0; i < 5; i++)
    arg[i] = flags & (1u << i) ? nullptr : fields[static_cast<size_t>(i)].c_str();
  bool null_buf = flags & 0x80;

  char *buf = null_buf ? nullptr : static_cast<char *>(std::malloc(out_size ? out_size : 1));
  int rc = rill_format_op_error(arg[0], arg[1], arg[2], arg[3], arg[4], err, buf, out_size);
  if (!arg[0] || !arg[1] || (null_buf && out_size > 0)) {
    if (rc != RILL_EINVAL)
      fail("bad arguments did not give RILL_EINVAL", std::to_string(rc));
  } else {
    std::string want = expected(arg[0], arg[1], arg[2], arg[3], arg[4], err);
    if (rc != static_cast<int>(want.size()))
      fail("the length differs from snprintf's", want);
    if (out_size > 0) {
      size_t kept = want.size() < out_size ? want.size() : out_size - 1;
      if (std::memcmp(buf, want.data(), kept) != 0 || buf[kept] != '\0')
        fail("the text is not the expected one, cut and NUL-terminated", want);
    }
  }
  std::free(buf);
  return 0;
}
