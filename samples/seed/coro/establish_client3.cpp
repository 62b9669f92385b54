// establish_client3 — a dial with a timeout to a peer that does not answer
// (seed 001, "conn establish" case 3; docs/go-model.md G9/G10): "i/o
// timeout". Coroutine version of ../establish_client3.c: the peer is a
// plain socket listening on --addr with a backlog of 0 that never accepts;
// one connection fills its queue, and the next dial hangs until its timeout.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "seed.hpp"

// The never-accepting peer: plain system calls (scaffolding, not the
// experiment; rill's listener would accept into its own queue).
static int stuck_listener() {
  struct sockaddr_storage ss;
  socklen_t len;
  int fd, on = 1;
  if (rill_addr_parse("tcp4", seed::opts.addr.c_str(), &ss, &len) < 0)
    return -1;
  if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
    return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind(fd, reinterpret_cast<struct sockaddr *>(&ss), len) < 0 || listen(fd, 0) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static rill::co::task<> run(rill::base_ref base) {
  const std::uint64_t timeout = static_cast<std::uint64_t>(seed::ms(2000, 200).count());
  const int fd = stuck_listener();
  if (fd < 0) {
    seed::say("cannot listen on %s", seed::opts.addr.c_str());
    seed::status = 1;
    co_return;
  }
  rill::net_options opts{};
  opts.timeout = timeout * RILL_MSEC;
  rill::co::stream filler;
  try {
    filler = co_await rill::co::dial(base, "tcp", seed::opts.addr, opts);
  } catch (const std::system_error &e) {
    seed::say("filling the backlog failed: %s", e.what());
    seed::status = 1;
    close(fd);
    co_return;
  }
  seed::say("a peer that never answers is ready");
  seed::say("begin dial...");
  const std::uint64_t t0 = seed::clock_ms();
  rill::co::stream c = co_await seed::dial(base, opts);
  const std::uint64_t took = seed::clock_ms() - t0;
  if (c) {
    c.conn().close_now();
    seed::status = 1;
  } else if (took + 5 >= timeout && took < timeout + 500) {
    seed::say("the dial gave up after its %d ms timeout", static_cast<int>(timeout));
  } else {
    seed::say("the dial gave up after %d ms, not after its %d ms timeout", static_cast<int>(took),
              static_cast<int>(timeout));
  }
  filler.conn().close_now();
  close(fd);
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8883");
  return seed::run(run);
}
