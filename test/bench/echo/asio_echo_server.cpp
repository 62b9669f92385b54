// asio_echo_server — the echo benchmark's C++ anchor: standalone Asio
// (Debian's libasio-dev) with C++20 coroutines, what a C++ programmer would
// pick instead of rill.
//
//   asio_echo_server [--listen HOST:PORT] [--quiet]
//
// One io_context run by one thread (the benchmark pins the server to one
// CPU), asio::awaitable coroutines started with co_spawn and resumed through
// use_awaitable: one accepts, every connection gets one that reads into a
// 16 KiB buffer in its frame and writes back until EOF or an error — the
// same program as coro_echo_server.cpp (rill's coroutines),
// samples/echo_server_blocking.c (fibers) and samples/go/echo_server.go.
// TCP_NODELAY on every connection, like rill and Go. SIGINT or SIGTERM stop
// the io_context.
#include <cstdio>
#include <cstring>
#include <string>

#include <asio.hpp>

namespace {

bool quiet = false;

asio::awaitable<void> serve(asio::ip::tcp::socket socket) {
  char buf[16 * 1024];  // in the coroutine's frame, allocated with it
  try {
    for (;;) {
      std::size_t n = co_await socket.async_read_some(asio::buffer(buf), asio::use_awaitable);
      co_await asio::async_write(socket, asio::buffer(buf, n), asio::use_awaitable);
    }
  } catch (const std::system_error &e) {
    if (!quiet && e.code() != asio::error::eof)
      std::fprintf(stderr, "asio_echo_server: %s\n", e.what());
  }
}

asio::awaitable<void> accept_loop(asio::ip::tcp::acceptor &acceptor) {
  for (;;) {
    asio::ip::tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    socket.set_option(asio::ip::tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
  }
}

}  // namespace

int main(int argc, char **argv) {
  std::string address = "127.0.0.1:7000";
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      address = argv[++i];
    } else if (std::strcmp(argv[i], "--quiet") == 0) {
      quiet = true;
    } else {
      std::fprintf(stderr, "usage: %s [--listen HOST:PORT] [--quiet]\n", argv[0]);
      return 2;
    }
  }
  const std::size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "asio_echo_server: %s: no port\n", address.c_str());
    return 2;
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  try {
    asio::io_context io(1);  // the concurrency hint for one thread
    asio::ip::tcp::endpoint endpoint(asio::ip::make_address(host),
                                     static_cast<unsigned short>(std::stoul(address.substr(colon + 1))));
    asio::ip::tcp::acceptor acceptor(io, endpoint);  // SO_REUSEADDR, listening
    if (!quiet)
      std::printf("asio_echo_server: listening on %s:%u (Asio %d, C++20 coroutines)\n",
                  acceptor.local_endpoint().address().to_string().c_str(), acceptor.local_endpoint().port(),
                  ASIO_VERSION);
    std::fflush(stdout);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&io](std::error_code, int) { io.stop(); });
    asio::co_spawn(io, accept_loop(acceptor), asio::detached);
    io.run();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "asio_echo_server: %s\n", e.what());
    return 1;
  }
  return 0;
}
