// rw_client3 — sends "hello" (or its argument) and closes at once. Run
// against rw_server3 (seed 001, "conn.Read" case 4).
// Coroutine version of ../rw_client3.c.
#include "seed.hpp"

static rill::co::task<> run(rill::base_ref base) {
  const std::string data = seed::opts.args.empty() ? "hello" : seed::opts.args[0];
  rill::co::stream s = co_await seed::dial(base);
  if (!s) {
    seed::status = 1;
    co_return;
  }
  try {
    co_await s.write(data);
    seed::say("write %d bytes: %s", static_cast<int>(data.size()), data.c_str());
  } catch (const std::system_error &e) {
    seed::say("write error: %s", e.what());
  }
  s.close();
  seed::say("close");
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8893");
  return seed::run(run);
}
