// Fixed-size slots for handles, carved from chunks that belong to one base.
//
// Creating a handle pops a free slot instead of calling the allocator, and a
// handle costs its own size with no allocator header: a million timers take
// a third less memory and are created several times faster than with one
// allocation each. Chunks grow geometrically and are returned to the
// allocator only when the base is freed, so a steady state that creates and
// frees handles allocates nothing. A new chunk is not threaded onto the free
// list: slots are carved from its untouched end as they are needed, so its
// pages are first touched by the handle that uses them (one page fault per
// page instead of a pass that faults them all in ahead of use; docs/timers.md:
// page faults were most of creating a million timers).
//
// A free slot starts with a zero byte (the handle kind "none") and keeps the
// next free slot 8 bytes in (so a slot holds at least 16 bytes); a slot in
// use starts with its handle's kind.
// That lets rill_base_dump() walk every live handle without a list, and lets
// the public entry points refuse a pointer to a free slot (core/handle.h).
//
// Checked pools (lifetime.h, 5): with RILL_HANDLE_CHECKS defined, or
// NDEBUG not defined, a returned slot goes to a quarantine and is reused
// first-in first-out only after quarantine_slots later returns, so a stale
// pointer keeps pointing at a free slot for a long while instead of at the
// next handle created. Built with AddressSanitizer too, free slots are
// poisoned, so touching one is reported where it happens.
#ifndef RILL_CORE_POOL_H
#define RILL_CORE_POOL_H

#include <cstddef>
#include <cstdint>

#if defined(RILL_HANDLE_CHECKS) || !defined(NDEBUG)
#define RILL_CHECKED_POOL 1
#endif

namespace rill::detail {

class handle_pool {
 public:
  explicit handle_pool(size_t slot_size) noexcept;
  handle_pool(const handle_pool &) = delete;
  handle_pool &operator=(const handle_pool &) = delete;
  ~handle_pool();

  // A slot of slot_size bytes, 8-byte aligned, or nullptr when out of memory.
  void *take() noexcept;
  // Returns a slot; its object must already be destroyed.
  void give(void *slot) noexcept;

  // Calls fn(slot, ctx) for every slot in use.
  void for_each_used(void (*fn)(const void *slot, void *ctx), void *ctx) const noexcept;

  // Slots a checked pool holds back before reusing the oldest.
  static constexpr size_t quarantine_slots = 256;

 private:
  struct chunk;
  bool grow() noexcept;
  void push_free(void *slot) noexcept;  // a slot already marked free

  size_t slot_size_;
  chunk *chunks_ = nullptr;
  void *free_ = nullptr;
  size_t next_slots_ = 16;
  // The newest chunk's never-used slots: [fresh_, fresh_end_).
  unsigned char *fresh_ = nullptr;
  unsigned char *fresh_end_ = nullptr;
  // The quarantine, oldest first (checked pools only; present in every
  // build so the layout never depends on the checks).
  void *quarantine_head_ = nullptr;
  void *quarantine_tail_ = nullptr;
  size_t quarantined_ = 0;
};

}  // namespace rill::detail

#endif
