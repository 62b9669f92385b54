// seed.hpp — what every seed experiment written with C++20 coroutines
// (include/rill/coro.hpp) shares: the command line, the sleeps, the
// printing, and running the main coroutine. The third writing of each
// experiment, beside samples/seed/<name>.c (the blocking fiber facade) and
// samples/go/seed/<name>/main.go (Go); all three print the same lines, which
// samples/seed/compare.sh checks.
//
//   <name> [--addr HOST:PORT] [--short]
//
// --short turns the seed's sleeps of seconds into tens or hundreds of
// milliseconds (see ../seed.h, which this mirrors).
//
// Errors: the coroutines throw std::system_error whose what() is Go's
// message ("read tcp 127.0.0.1:PORT->127.0.0.1:8891: i/o timeout"), and a
// read at EOF returns 0, where Go's Read returns io.EOF: eof_text is its
// err.Error().
#ifndef SEED_CORO_HPP
#define SEED_CORO_HPP

#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <system_error>
#include <vector>

#include "rill/coro.hpp"

using namespace std::chrono_literals;  // 1ms, 1s: these are programs, not a library

namespace seed {

struct options {
  std::string addr;
  bool short_mode = false;
  std::vector<std::string> args;  // positional, after the flags
};

inline options opts;
inline int status = 0;                  // the exit status
inline constexpr const char *eof_text = "EOF";  // Go's io.EOF.Error()

/// Parses --addr ADDR (or --addr=ADDR), --short, and positional arguments.
inline void parse(int argc, char **argv, const char *default_addr) {
  opts.addr = default_addr;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] == '-' && a[1] == '-')
      a++;  // Go's flag package takes -x and --x alike
    if (std::strcmp(a, "-addr") == 0 && i + 1 < argc) {
      opts.addr = argv[++i];
    } else if (std::strncmp(a, "-addr=", 6) == 0) {
      opts.addr = a + 6;
    } else if (std::strcmp(a, "-short") == 0) {
      opts.short_mode = true;
    } else if (a[0] != '-') {
      opts.args.assign(argv + i, argv + argc);
      break;
    } else {
      std::fprintf(stderr, "usage: %s [--addr HOST:PORT] [--short] [args...]\n", argv[0]);
      std::exit(2);
    }
  }
}

/// The seed's duration, or the short one under --short.
inline std::chrono::milliseconds ms(long long long_ms, long long short_ms) {
  return std::chrono::milliseconds(opts.short_mode ? short_ms : long_ms);
}

/// Prints one event line, at once (compare.sh reads while we run).
__attribute__((format(printf, 1, 2))) inline void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vprintf(fmt, ap);
  va_end(ap);
  std::putchar('\n');
  std::fflush(stdout);
}

/// Wall-clock milliseconds, for "did that call wait?" checks.
inline std::uint64_t clock_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000u;
}

/// The error of a read that returned `n`: Go's "EOF" for 0.
inline const char *read_end(std::size_t n) { return n == 0 ? eof_text : "none"; }

/// Listens on opts.addr ("listen ok"), or prints Go's error and returns
/// false. `a` is left empty on failure.
inline bool listen(rill::base_ref base, std::optional<rill::co::acceptor> &a,
                   const rill::net_options &o = rill::net_options{}) {
  try {
    a.emplace(base, "tcp", opts.addr, o);
  } catch (const std::system_error &e) {
    char msg[256];
    rill_format_op_error("listen", "tcp", nullptr, opts.addr.c_str(), nullptr, e.code().value(), msg,
                         sizeof msg);
    say("listen error: %s", msg);
    return false;
  }
  say("listen ok");
  return true;
}

/// Accepts one connection (the experiments serve exactly one).
inline rill::co::task<rill::co::stream> accept_one(rill::co::acceptor &a) {
  rill::co::stream s = co_await a.accept();
  say("accept a new connection");
  co_return s;
}

/// Dials opts.addr: "dial ok", or Go's error and an empty stream.
inline rill::co::task<rill::co::stream> dial(rill::base_ref base,
                                             const rill::net_options &o = rill::net_options{}) {
  try {
    rill::co::stream s = co_await rill::co::dial(base, "tcp", opts.addr, o);
    say("dial ok");
    co_return s;
  } catch (const std::system_error &e) {
    say("dial error: %s", e.what());
  }
  co_return rill::co::stream();
}

/// The establish_server2/client2 pair's control socket, as ../seed.h names it.
inline std::string control_address() { return "@rill-seed-establish2-" + opts.addr; }

/// Runs `main(base)` on a fresh base until every handle is done; the exit
/// status is seed::status, or 1 if the coroutine threw.
template <class F>
int run(F &&main) {
  try {
    rill::base base;
    rill::co::job j = rill::co::spawn(main(rill::base_ref(base.get())));
    base.run();
    j.get();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "rill: %s\n", e.what());
    return 1;
  }
  return status;
}

}  // namespace seed

#endif  // SEED_CORO_HPP
