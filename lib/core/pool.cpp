#include "core/pool.h"

#include <cstring>

#include "core/alloc.h"

namespace rill::detail {

struct handle_pool::chunk {
  chunk *next;
  size_t slots;
  // The slots follow, 8-byte aligned.
  unsigned char *first() { return reinterpret_cast<unsigned char *>(this) + header_size; }
  static constexpr size_t header_size = 16;
};

namespace {

constexpr size_t max_chunk_slots = 4096;

void *next_free(void *slot) {
  void *next;
  std::memcpy(&next, static_cast<unsigned char *>(slot) + 8, sizeof next);
  return next;
}

void mark_free(void *slot, void *next) {
  static_cast<unsigned char *>(slot)[0] = 0;
  std::memcpy(static_cast<unsigned char *>(slot) + 8, &next, sizeof next);
}

}  // namespace

handle_pool::handle_pool(size_t slot_size)
    : slot_size_((slot_size + 7) & ~size_t{7}) {}

handle_pool::~handle_pool() {
  while (chunk *c = chunks_) {
    chunks_ = c->next;
    mem_free(c);
  }
}

bool handle_pool::grow() noexcept {
  size_t slots = next_slots_;
  auto *c = static_cast<chunk *>(mem_alloc(chunk::header_size + slots * slot_size_));
  if (!c)
    return false;
  c->next = chunks_;
  c->slots = slots;
  chunks_ = c;
  // Thread the new slots onto the free list, first slot first.
  for (size_t i = slots; i-- > 0;) {
    void *slot = c->first() + i * slot_size_;
    mark_free(slot, free_);
    free_ = slot;
  }
  if (next_slots_ < max_chunk_slots)
    next_slots_ *= 2;
  return true;
}

void *handle_pool::take() noexcept {
  if (!free_ && !grow())
    return nullptr;
  void *slot = free_;
  free_ = next_free(slot);
  return slot;
}

void handle_pool::give(void *slot) noexcept {
  mark_free(slot, free_);
  free_ = slot;
}

void handle_pool::for_each_used(void (*fn)(const void *, void *), void *ctx) const noexcept {
  for (chunk *c = chunks_; c; c = c->next)
    for (size_t i = 0; i < c->slots; i++) {
      const unsigned char *slot = c->first() + i * slot_size_;
      if (slot[0] != 0)
        fn(slot, ctx);
    }
}

}  // namespace rill::detail
