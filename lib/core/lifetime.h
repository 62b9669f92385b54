// The lifetime protocol: how every rill handle is born, used, closed and
// freed. Every handle kind follows it (io watchers, timers, signal watchers,
// listeners, connections, dialers, DNS queries, the facade's handles, and
// any kind added later: TLS, io_uring operations), and the base itself.
//
// 1. States. A handle is OPEN, then CLOSING, then CLOSED:
//    - OPEN: every call works and callbacks may be delivered.
//    - CLOSING starts with the user's close/free/cancel call. From then on
//      the handle starts no new work and delivers no new callbacks except
//      the ones its close promises (a connection's flush and its one
//      on_close; a dial's or lookup's one completion). Calls on it return
//      RILL_ECLOSED (or the documented code of that call).
//    - CLOSED: the terminal report (if the kind has one) has been delivered,
//      exactly once. The user's pointer is dead from here on.
//    Kinds with no close report (io watchers, timers, signal watchers) go
//    from OPEN to CLOSED at the free call; freed inside their own callback
//    they stay in memory, closed, until that callback returns.
//
// 2. References. A handle is freed when its last reference goes, never
//    before and never by anything else:
//    - the owner's reference, taken at creation and given up when the handle
//      reaches CLOSED (for kinds with no close report: at the free call);
//    - one reference for every dispatch in progress: whoever calls a user
//      callback holds the handle across the call (life_hold / life_release),
//      so a callback may close or free anything, its own handle included,
//      and the code after the call still finds live memory;
//    - one reference for each queued report (a pending node on the base's
//      queue) and for each in-flight kernel or library operation that will
//      come back to the handle (an io_uring submission, a c-ares query).
//    The release that drops the count to zero runs the kind's free function.
//
// 3. Closing is a phase that finishes in the loop: no callback runs inside
//    the API call that caused it (DESIGN.md). Close reports go through the
//    pending queue.
//
// 4. The base has the states IDLE (not running), RUNNING (inside
//    rill_base_run) and FREEING (inside rill_base_free, which may run posted
//    functions and the completions of lookups and dials it cancels). A call
//    that would tear the base down from inside its own run or teardown
//    (rill_base_free from a callback, rill_base_run from a callback) is
//    refused with RILL_EBUSY and changes nothing (core/base_impl.h,
//    base_state).
//
// 5. Misuse is caught where it can be. Pooled handles (core/pool.h) start
//    with their kind byte, which a free slot has as 0, so every public entry
//    point checks that it was given a live handle of its kind and returns
//    RILL_EINVAL otherwise (core/handle.h). A stale pointer only points at a
//    free slot if the slot is not reused at once: with handle checks on
//    (the RILL_HANDLE_CHECKS CMake option, on by default except in Release
//    and MinSizeRel builds without sanitizers; and any build without
//    NDEBUG), freed slots wait in a first-in first-out quarantine before
//    reuse, and under AddressSanitizer they are poisoned, so the stale call
//    is reported where it happens. rill/base.h ("Stale handles") says what
//    the user is promised.
//
// 6. Exceptions: rill is compiled with exceptions (and throws none), so a
//    C++ exception thrown by a user callback unwinds through it. Nothing on
//    a dispatch path is noexcept (that would call std::terminate), every
//    hold is a scope guard (`held`) and so is the base's state, so the
//    unwinding drops the holds, puts back what was collected and not yet
//    dispatched, and returns the base to IDLE, usable; the handle whose
//    callback threw is left as the callback left it (rill/base.h,
//    "Exceptions", states the promise).
#ifndef RILL_CORE_LIFETIME_H
#define RILL_CORE_LIFETIME_H

#include <cassert>
#include <cstdint>

namespace rill::detail {

enum class life_state : uint8_t { open, closing, closed };

// Embedded in every handle. `refs` starts at 1: the owner's reference.
struct life {
  uint32_t refs = 1;
  life_state state = life_state::open;

  bool open() const noexcept { return state == life_state::open; }
  bool closing() const noexcept { return state != life_state::open; }
};

inline void life_hold(life &l) noexcept { l.refs++; }

// True when this was the last reference: the caller must free the handle.
[[nodiscard]] inline bool life_release(life &l) noexcept {
  assert(l.refs > 0);
  return --l.refs == 0;
}

// Holds `h` (anything with a `life lifetime` member and a free function
// `release(h)`) for the scope: the dispatch idiom.
//   { held guard(c); c->events.on_read(...); }   // c may be freed here
template <typename T, void (*Release)(T *)>
class held {
 public:
  explicit held(T *h) noexcept : h_(h) { life_hold(h_->lifetime); }
  held(const held &) = delete;
  held &operator=(const held &) = delete;
  ~held() { Release(h_); }

 private:
  T *h_;
};

}  // namespace rill::detail

#endif
