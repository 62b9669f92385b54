// rw_client1 — connects, says nothing for a while, then sends "hello" and
// closes. Run against rw_server1 (seed 001, "conn.Read" case 1).
// Coroutine version of ../rw_client1.c.
#include "seed.hpp"

static rill::co::task<> run(rill::base_ref base) {
  rill::co::stream s = co_await seed::dial(base);
  if (!s) {
    seed::status = 1;
    co_return;
  }
  co_await rill::co::sleep(base, seed::ms(2000, 200));  // rw_server1 expects at least half of this
  try {
    co_await s.write("hello");
    seed::say("write 5 bytes: hello");
  } catch (const std::system_error &e) {
    seed::say("write error: %s", e.what());
  }
  s.close();
  seed::say("close");
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8891");
  return seed::run(run);
}
