// rw_client4 — waits a little, sends 65536 bytes, closes. Run against
// rw_server4 (seed 001, "conn.Read" case 5).
// Coroutine version of ../rw_client4.c.
#include "seed.hpp"

static rill::co::task<> run(rill::base_ref base) {
  static const std::string data(65536, '\0');
  rill::co::stream s = co_await seed::dial(base);
  if (!s) {
    seed::status = 1;
    co_return;
  }
  // After rw_server4's first read has timed out (its deadline is 1/2 of this).
  co_await rill::co::sleep(base, seed::ms(2000, 200));
  try {
    co_await s.write(data);
    seed::say("write %d bytes", static_cast<int>(data.size()));
  } catch (const std::system_error &e) {
    seed::say("write error: %s", e.what());
  }
  s.close();
  seed::say("close");
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8894");
  return seed::run(run);
}
