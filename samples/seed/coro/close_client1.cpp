// close_client1 — reading and writing a connection this side has closed
// (seed 001, "closing"; docs/go-model.md G23): "use of closed network
// connection", for both. Run against close_server1.
// Coroutine version of ../close_client1.c.
#include "seed.hpp"

static rill::co::task<> run(rill::base_ref base) {
  char buf[32] = {0};
  seed::say("begin dial...");
  rill::co::stream c = co_await seed::dial(base);
  if (!c) {
    seed::status = 1;
    co_return;
  }
  c.conn().close_now();
  seed::say("close ok");
  try {
    const std::size_t n = co_await c.read(buf, sizeof buf);
    seed::say("read %d bytes", static_cast<int>(n));
  } catch (const std::system_error &e) {
    seed::say("read error: %s", e.what());
  }
  try {
    co_await c.write(std::string_view(buf, sizeof buf));
    seed::say("write %d bytes", static_cast<int>(sizeof buf));
  } catch (const std::system_error &e) {
    seed::say("write error: %s", e.what());
  }
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8901");
  return seed::run(run);
}
