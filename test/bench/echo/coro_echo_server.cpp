// coro_echo_server — the echo benchmark's server written with rill's C++20
// coroutines (include/rill/coro.hpp).
//
//   coro_echo_server [--listen ADDR] [--quiet]
//
// One coroutine accepts; every connection gets a detached coroutine that
// reads into a 16 KiB buffer in its frame (the buffer of
// samples/echo_server_blocking.c) and writes back until EOF or an error —
// the same program as asio_echo_server.cpp, samples/echo_server_blocking.c
// (fibers) and samples/go/echo_server.go, so the echo benchmark compares the
// models, not the programs. Listens on ADDR (default 127.0.0.1:7000), one
// thread, until SIGINT or SIGTERM end the process.
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

#include "rill/coro.hpp"

namespace {

bool quiet = false;

rill::co::task<> serve(rill::co::stream s) {
  char buf[16 * 1024];  // in the coroutine's frame, allocated with it
  try {
    while (std::size_t n = co_await s.read(buf, sizeof buf))  // 0: EOF
      co_await s.write(std::string_view(buf, n));
  } catch (const std::system_error &e) {
    if (!quiet)
      std::fprintf(stderr, "coro_echo_server: %s\n", e.what());
  }
}

rill::co::task<> accept_loop(rill::co::acceptor &acceptor) {
  for (;;) {
    rill::co::stream s = co_await acceptor.accept();
    rill::co::spawn(serve(std::move(s))).detach();
  }
}

}  // namespace

int main(int argc, char **argv) {
  const char *address = "127.0.0.1:7000";
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      address = argv[++i];
    } else if (std::strcmp(argv[i], "--quiet") == 0) {
      quiet = true;
    } else {
      std::fprintf(stderr, "usage: %s [--listen ADDR] [--quiet]\n", argv[0]);
      return 2;
    }
  }
  try {
    rill::base base;
    rill::co::acceptor acceptor(base, "tcp", address);
    if (!quiet)
      std::printf("coro_echo_server: listening on %s (%s backend, rill C++20 coroutines)\n", acceptor.addr().c_str(),
                  base.backend());
    std::fflush(stdout);
    rill::co::job accepting = rill::co::spawn(accept_loop(acceptor));
    base.run();
    accepting.get();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "coro_echo_server: %s\n", e.what());
    return 1;
  }
  return 0;
}
