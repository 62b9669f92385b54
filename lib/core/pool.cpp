#include "core/pool.h"

#include <cstring>

#if defined(__linux__)
#endif

#include "core/alloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define RILL_POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RILL_POOL_ASAN 1
#endif
#endif

#if defined(RILL_POOL_ASAN) && defined(RILL_CHECKED_POOL)
#include <sanitizer/asan_interface.h>
#define RILL_POOL_POISON 1
#endif

namespace rill::detail {

struct handle_pool::chunk {
  chunk *next;
  size_t slots;
  // The slots follow, 8-byte aligned.
  unsigned char *first() { return reinterpret_cast<unsigned char *>(this) + header_size; }
  static constexpr size_t header_size = 16;
};

namespace {

// Chunks double up to this many slots (4.5 MiB of 72-byte timers); the
// untouched end of a chunk costs address space, not memory. They do not ask
// for transparent huge pages: where the kernel compacts memory for a region
// that asked (THP defrag "madvise", the kernel's default), a fault could stall
// the loop for as long as compaction takes (docs/timers.md).
constexpr size_t max_chunk_slots = 262144;
constexpr size_t link_offset = 8;

#ifdef RILL_POOL_POISON
void poison(void *p, size_t n) { __asan_poison_memory_region(p, n); }
void unpoison(void *p, size_t n) { __asan_unpoison_memory_region(p, n); }
bool poisoned(const void *p) { return __asan_address_is_poisoned(p) != 0; }
#else
void poison(void *, size_t) {}
void unpoison(void *, size_t) {}
bool poisoned(const void *) { return false; }
#endif

// A free slot's link, read and written with the slot's poison lifted for
// just those bytes.
void *next_free(void *slot) {
  unsigned char *at = static_cast<unsigned char *>(slot) + link_offset;
  void *next;
  unpoison(at, sizeof next);
  std::memcpy(&next, at, sizeof next);
  poison(at, sizeof next);
  return next;
}

// Kind byte 0, then poisoned: a free slot from here on.
void mark_free(void *slot, size_t size) {
  static_cast<unsigned char *>(slot)[0] = 0;
  poison(slot, size);
}

void set_next(void *slot, void *next) {
  unsigned char *at = static_cast<unsigned char *>(slot) + link_offset;
  unpoison(at, sizeof next);
  std::memcpy(at, &next, sizeof next);
  poison(at, sizeof next);
}

}  // namespace

handle_pool::handle_pool(size_t slot_size) noexcept
    : slot_size_((slot_size + 7) & ~size_t{7}) {
  if (slot_size_ < 16)
    slot_size_ = 16;
}

handle_pool::~handle_pool() {
  while (chunk *c = chunks_) {
    chunks_ = c->next;
    // The user's allocator may keep its own bookkeeping in the block.
    unpoison(c->first(), c->slots * slot_size_);
    mem_free(c);
  }
}

// Pushes a slot already marked free on the free list.
void handle_pool::push_free(void *slot) noexcept {
  set_next(slot, free_);
  free_ = slot;
}

bool handle_pool::grow() noexcept {
  size_t slots = next_slots_;
  size_t bytes = chunk::header_size + slots * slot_size_;
  auto *c = static_cast<chunk *>(mem_alloc(bytes));
  if (!c)
    return false;
  c->next = chunks_;
  c->slots = slots;
  chunks_ = c;
  // The slots stay untouched until take() carves them; a checked pool under
  // ASan poisons them, as free.
  fresh_ = c->first();
  fresh_end_ = fresh_ + slots * slot_size_;
  poison(fresh_, slots * slot_size_);
  if (next_slots_ < max_chunk_slots)
    next_slots_ *= 2;
  return true;
}

void *handle_pool::take() noexcept {
  if (free_) {
    void *slot = free_;
    free_ = next_free(slot);
    unpoison(slot, slot_size_);
    return slot;
  }
  if (fresh_ == fresh_end_ && !grow()) {
    // Out of memory: reusing a quarantined slot early beats failing.
    if (!quarantine_head_)
      return nullptr;
    void *slot = quarantine_head_;
    quarantine_head_ = next_free(slot);
    if (!quarantine_head_)
      quarantine_tail_ = nullptr;
    quarantined_--;
    unpoison(slot, slot_size_);
    return slot;
  }
  void *slot = fresh_;
  fresh_ += slot_size_;
  unpoison(slot, slot_size_);
  return slot;
}

void handle_pool::give(void *slot) noexcept {
  mark_free(slot, slot_size_);
#ifdef RILL_CHECKED_POOL
  set_next(slot, nullptr);
  if (quarantine_tail_)
    set_next(quarantine_tail_, slot);
  else
    quarantine_head_ = slot;
  quarantine_tail_ = slot;
  if (++quarantined_ <= quarantine_slots)
    return;
  void *oldest = quarantine_head_;
  quarantine_head_ = next_free(oldest);
  quarantined_--;
  push_free(oldest);
#else
  push_free(slot);
#endif
}

void handle_pool::for_each_used(void (*fn)(const void *, void *), void *ctx) const noexcept {
  for (chunk *c = chunks_; c; c = c->next) {
    // The newest chunk's never-used end holds no handle, nor even a kind.
    size_t used = c == chunks_ && fresh_ ? static_cast<size_t>(fresh_ - c->first()) / slot_size_ : c->slots;
    for (size_t i = 0; i < used; i++) {
      const unsigned char *slot = c->first() + i * slot_size_;
      if (!poisoned(slot) && slot[0] != 0)
        fn(slot, ctx);
    }
  }
}

}  // namespace rill::detail
