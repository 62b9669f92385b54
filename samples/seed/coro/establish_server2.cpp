// establish_server2 — a server that does not accept, so its listen backlog
// fills up (seed 001, "conn establish" case 2; G9 in docs/go-model.md). Run
// with establish_client2. Coroutine version of ../establish_server2.c,
// which says why the backlog is 4 and why the client, not a sleep, says
// when to accept.
//
// rill::co::acceptor takes connections from the kernel as they come (into
// its own queue), which would leave the kernel's queue empty: it is paused
// until the client's word, so they pile up in the kernel as in Go.
#include "seed.hpp"

static constexpr int backlog = 4;
// BACKLOG + 1 that the kernel queues at once (Linux queues one more than
// the backlog), then one that waits for an accept.
static constexpr int total = backlog + 1 + 1;

static rill::co::task<> run(rill::base_ref base) {
  // The control socket first: the client may start once "listen ok" is out.
  std::optional<rill::co::acceptor> control_l;
  try {
    control_l.emplace(base, "unix", seed::control_address());
  } catch (const std::system_error &e) {
    seed::say("control listen error: %s", e.code().message().c_str());
    seed::status = 1;
    co_return;
  }
  rill::net_options opts{};
  opts.backlog = backlog;
  std::optional<rill::co::acceptor> l;
  if (!seed::listen(base, l, opts)) {
    seed::status = 1;
    co_return;
  }
  l->pause();  // nothing is taken from the kernel until the client asks for it
  std::vector<rill::co::stream> conns;
  try {
    rill::co::stream control = co_await control_l->accept();
    char go;
    if (co_await control.read(&go, 1) != 1)
      throw std::system_error(make_error_code(rill::errc::eof), "control");
    l->resume();
  } catch (const std::system_error &e) {
    seed::say("control error: %s", e.what());
    seed::status = 1;
    co_return;
  }
  for (int i = 1; i <= total; i++) {
    try {
      conns.push_back(co_await l->accept());
    } catch (const std::system_error &e) {
      seed::say("accept error: %s", e.what());
      seed::status = 1;
      break;
    }
    seed::say("%d: accept a new connection", i);
  }
  for (rill::co::stream &c : conns)
    c.conn().close_now();
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8882");
  return seed::run(run);
}
