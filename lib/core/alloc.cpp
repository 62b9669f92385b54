#include "core/alloc.h"

#include <atomic>
#include <cstdlib>

#include "rill/base.h"

namespace rill::detail {
namespace {

struct allocator {
  rill_malloc_fn alloc = std::malloc;
  rill_realloc_fn realloc = std::realloc;
  rill_free_fn free = std::free;
};

allocator current;
std::atomic<int> live_bases{0};

}  // namespace

void *mem_alloc(size_t size) noexcept { return current.alloc(size); }
void *mem_realloc(void *ptr, size_t size) noexcept { return current.realloc(ptr, size); }
void mem_free(void *ptr) noexcept { current.free(ptr); }

void note_base_created() noexcept { live_bases.fetch_add(1, std::memory_order_relaxed); }
void note_base_freed() noexcept { live_bases.fetch_sub(1, std::memory_order_relaxed); }

}  // namespace rill::detail

extern "C" int rill_set_allocator(rill_malloc_fn m, rill_realloc_fn r, rill_free_fn f) {
  using namespace rill::detail;
  if ((m == nullptr) != (r == nullptr) || (m == nullptr) != (f == nullptr))
    return RILL_EINVAL;
  if (live_bases.load(std::memory_order_relaxed) != 0)
    return RILL_EBUSY;
  if (m == nullptr)
    current = allocator{};
  else
    current = allocator{m, r, f};
  return 0;
}
