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
  // Blocks follow the header, at a multiple of 64 bytes from the chunk's
  // start, or from the first 2 MiB boundary in a chunk of huge pages.
  static constexpr size_t header_size = 64;
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

bool block_source::grow() noexcept {
  size_t n = next_blocks;
  size_t span = n * sizeof(wheel_block);
  // A chunk of whole huge pages starts at a 2 MiB boundary: the blocks
  // of a million timers are 8 MB that stopping reaches at random, and a
  // TLB miss per stop costs more than the stop (a nested page walk on a
  // VM). The slack before the boundary is never touched: address space.
  bool huge = span >= 2 * huge_page;
  size_t bytes = wheel_chunk::header_size + span + (huge ? huge_page : 0);
  auto *c = static_cast<wheel_chunk *>(mem_alloc(bytes));
  if (!c)
    return false;
  auto first = reinterpret_cast<uintptr_t>(c) + wheel_chunk::header_size;
  if (huge) {
    first = (first + huge_page - 1) & ~(huge_page - 1);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // Advice: a refusal (no THP, another allocator's memory) changes nothing.
    madvise(reinterpret_cast<void *>(first), span, MADV_HUGEPAGE);
#endif
  }
  c->next = chunks;
  chunks = c;
  fresh = reinterpret_cast<wheel_block *>(first);
  fresh_end = fresh + n;
  if (next_blocks < max_chunk_blocks)
    next_blocks *= 2;
  return true;
}

wheel_block *block_source::take() noexcept {
  if (wheel_block *b = free) {
    free = b->next;
    return b;
  }
  if (fresh == fresh_end && !grow())
    return nullptr;
  return fresh++;
}

}  // namespace rill::detail
