#ifndef RILL_CORE_CLOCK_H
#define RILL_CORE_CLOCK_H

#include <cstdint>

namespace rill::detail {

// Monotonic time in nanoseconds.
uint64_t monotonic_ns() noexcept;

constexpr uint64_t ns_per_ms = 1000000;

}  // namespace rill::detail

#endif
