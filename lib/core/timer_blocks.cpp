// Where the timing wheel's slots get their blocks of entries
// (core/timer_wheel.h): chunks carved lazily, as the handle pool's are, so
// each page is first touched by the block that uses it.
#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "core/alloc.h"
#include "core/timer_wheel.h"

namespace rill::detail {

struct wheel_chunk {
  wheel_chunk *next;
  size_t blocks;
  // Blocks follow, at a multiple of 64 bytes from the chunk's start.
  static constexpr size_t header_size = 64;
  wheel_block *first() {
    return reinterpret_cast<wheel_block *>(reinterpret_cast<unsigned char *>(this) + header_size);
  }
};

namespace {

constexpr size_t max_chunk_blocks = 8192;  // 4 MiB
constexpr size_t huge_page = size_t{2} << 20;

}  // namespace

block_source::~block_source() {
  while (wheel_chunk *c = chunks) {
    chunks = c->next;
    mem_free(c);
  }
}

wheel_block *block_source::take() noexcept {
  if (wheel_block *b = free) {
    free = b->next;
    return b;
  }
  if (fresh == fresh_end) {
    size_t n = next_blocks;
    size_t bytes = wheel_chunk::header_size + n * sizeof(wheel_block);
    auto *c = static_cast<wheel_chunk *>(mem_alloc(bytes));
    if (!c)
      return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= 2 * huge_page) {
      // Advice on the whole huge pages inside: a million timers' entries
      // are 16 MB that arming and stopping reach at random, which small
      // pages turn into a TLB miss each.
      auto from = (reinterpret_cast<uintptr_t>(c) + huge_page - 1) & ~(huge_page - 1);
      auto to = (reinterpret_cast<uintptr_t>(c) + bytes) & ~(huge_page - 1);
      if (to > from)
        madvise(reinterpret_cast<void *>(from), to - from, MADV_HUGEPAGE);
    }
#endif
    c->next = chunks;
    c->blocks = n;
    chunks = c;
    fresh = c->first();
    fresh_end = fresh + n;
    if (next_blocks < max_chunk_blocks)
      next_blocks *= 2;
  }
  return fresh++;
}

}  // namespace rill::detail
