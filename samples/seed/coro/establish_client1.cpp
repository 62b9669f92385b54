// establish_client1 — dialing a port nobody listens on (seed 001, "conn
// establish" case 1; docs/go-model.md G8): the dial fails at once with
// "connection refused". Coroutine version of ../establish_client1.c.
#include "seed.hpp"

static rill::co::task<> run(rill::base_ref base) {
  const std::uint64_t t0 = seed::clock_ms();
  seed::say("begin dial...");
  rill::co::stream s = co_await seed::dial(base);
  if (!s) {
    // Well under 100 ms: the kernel answers a SYN to a closed port with RST.
    if (seed::clock_ms() - t0 < 100)
      seed::say("the dial failed at once (under 100 ms)");
    co_return;
  }
  s.conn().close_now();
  seed::status = 1;
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8881");
  return seed::run(run);
}
