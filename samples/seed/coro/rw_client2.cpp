// rw_client2 — sends each argument after a pause (seed 001, "conn.Read"
// cases 2 and 3). Default: "hi" (fewer bytes than the server's 10-byte
// buffer) then "abcdefghij12345" (more). Run against rw_server2.
// Coroutine version of ../rw_client2.c.
#include "seed.hpp"

static rill::co::task<> run(rill::base_ref base) {
  const std::vector<std::string> data =
      seed::opts.args.empty() ? std::vector<std::string>{"hi", "abcdefghij12345"} : seed::opts.args;
  rill::co::stream s = co_await seed::dial(base);
  if (!s) {
    seed::status = 1;
    co_return;
  }
  for (const std::string &d : data) {
    co_await rill::co::sleep(base, seed::ms(2000, 100));
    try {
      co_await s.write(d);
    } catch (const std::system_error &e) {
      seed::say("write error: %s", e.what());
      break;
    }
    seed::say("write %d bytes: %s", static_cast<int>(d.size()), d.c_str());
  }
  s.close();
  seed::say("close");
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8892");
  return seed::run(run);
}
