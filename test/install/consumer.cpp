// A tiny C++ program built against an installed rill: include/rill.hpp
// (installed beside rill.h) with a base, a timer, a run.
#include <rill.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

int main() {
  if (rill_version() != ((RILL_VERSION_MAJOR << 16) | (RILL_VERSION_MINOR << 8) |
                         RILL_VERSION_PATCH)) {
    std::fprintf(stderr, "header version %s, library %s\n", RILL_VERSION_STRING,
                 rill_version_string());
    return 1;
  }
  int fired = 0;
  rill::base base;  // throws std::system_error on failure
  rill::timer timer(base, [&] { ++fired; });
  if (timer.start(10ms)) {
    std::fprintf(stderr, "timer.start failed\n");
    return 1;
  }
  base.run();
  std::printf("rill %s on %s (C++): timer fired %d time(s)\n", rill_version_string(),
              base.backend(), fired);
  return fired == 1 ? 0 : 1;
}
