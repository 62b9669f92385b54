// establish_client2 — dialing a server whose listen backlog is full (seed
// 001, "conn establish" case 2; G9 in docs/go-model.md). Run against
// establish_server2. Coroutine version of ../establish_client2.c, which
// tells the story: serial dials with a timeout complete at once while the
// kernel can queue them, then one times out; a dial without a timeout
// waits, and once its socket is in SYN_SENT the client tells the server
// (over a control socket) to accept, after which the dial completes with a
// SYN retransmission. Every line follows from events, not from speed.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "seed.hpp"

static constexpr int max_conns = 1000;

// The dial of phase 2, run in a coroutine of its own while the main one
// watches its socket.
struct stuck_dial {
  int fd = -1;  // the dial's socket, from the control hook
  bool done = false;
  rill::co::stream conn;
  std::string error;  // Go's message, if it failed
  std::uint64_t took_ms = 0;
};

static int remember_fd(int fd, const char *, const char *, void *arg) {
  static_cast<stuck_dial *>(arg)->fd = fd;
  return 0;
}

static rill::co::task<> dial_stuck(rill::base_ref base, stuck_dial &d) {
  rill::net_options opts{};
  opts.control = remember_fd;
  opts.control_arg = &d;
  const std::uint64_t t0 = seed::clock_ms();
  try {
    d.conn = co_await rill::co::dial(base, "tcp", seed::opts.addr, opts);
  } catch (const std::system_error &e) {
    d.error = e.what();
  }
  d.took_ms = seed::clock_ms() - t0;
  d.done = true;
}

// connect() has sent the SYN: the socket waits in SYN_SENT.
static bool syn_sent(int fd) {
  struct tcp_info info;
  socklen_t len = sizeof info;
  return fd >= 0 && getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
         info.tcpi_state == TCP_SYN_SENT;
}

static rill::co::task<> run(rill::base_ref base) {
  std::vector<rill::co::stream> conns;
  rill::co::stream control;
  try {
    control = co_await rill::co::dial(base, "unix", seed::control_address());
  } catch (const std::system_error &e) {
    seed::say("control dial error: %s", e.what());
    seed::status = 1;
    co_return;
  }
  rill::net_options timeout{};
  timeout.timeout = static_cast<std::uint64_t>(seed::ms(2000, 200).count()) * RILL_MSEC;
  // Phase 1: dial with a timeout until one times out. The successes are
  // summed up in one line: their number is the server's queue length.
  bool timed_out = false;
  while (conns.size() < max_conns) {
    try {
      conns.push_back(co_await rill::co::dial(base, "tcp", seed::opts.addr, timeout));
    } catch (const std::system_error &e) {
      seed::say("1-%d: connect to server ok (at once)", static_cast<int>(conns.size()));
      seed::say("%d: dial error: %s", static_cast<int>(conns.size()) + 1, e.what());
      timed_out = true;
      break;
    }
    // A pause between dials: on a loaded machine the kernel may finish
    // queueing one connection a little after its dial returned.
    co_await rill::co::sleep(base, 2ms);
  }
  if (!timed_out) {
    seed::say("1-%d: connect to server ok (no dial ever waited)", static_cast<int>(conns.size()));
    seed::status = 1;
    co_await control.write("a");  // let the server finish
    co_return;
  }
  // Phase 2: a dial without a timeout waits while the server does not
  // accept. Once it is stuck, the server is told to accept; the dial then
  // completes with the next SYN retransmission.
  stuck_dial d;
  rill::co::job dialing = rill::co::spawn(dial_stuck(base, d));
  while (!d.done && !syn_sent(d.fd))
    co_await rill::co::sleep(base, 1ms);
  co_await control.write("a");
  while (!d.done)
    co_await rill::co::sleep(base, 1ms);
  // n + 2: the dial that timed out had a number too.
  const int number = static_cast<int>(conns.size()) + 2;
  if (!d.error.empty()) {
    seed::say("%d: dial error: %s", number, d.error.c_str());
    seed::status = 1;
  } else {
    conns.push_back(std::move(d.conn));
    seed::say("%d: connect to server ok (%s)", number,
              d.took_ms >= 100 ? "after waiting for an accept" : "at once");
  }
  for (rill::co::stream &c : conns)
    c.conn().close_now();
  control.conn().close_now();
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8882");
  return seed::run(run);
}
