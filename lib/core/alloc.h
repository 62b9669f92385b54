// The allocator every part of rill allocates through, replaceable by the user
// (rill_set_allocator), so tests can count allocations and embedders can use
// their own heap.
#ifndef RILL_CORE_ALLOC_H
#define RILL_CORE_ALLOC_H

#include <cstddef>
#include <new>
#include <utility>

namespace rill::detail {

void *mem_alloc(size_t size) noexcept;
void *mem_realloc(void *ptr, size_t size) noexcept;
void mem_free(void *ptr) noexcept;

// Bases alive in the process; the allocator may only change while none is.
void note_base_created() noexcept;
void note_base_freed() noexcept;

// Allocates and constructs a T, or returns nullptr when out of memory.
template <typename T, typename... Args>
T *make(Args &&...args) noexcept {
  void *p = mem_alloc(sizeof(T));
  return p ? new (p) T(std::forward<Args>(args)...) : nullptr;
}

template <typename T>
void destroy(T *p) noexcept {
  if (p) {
    p->~T();
    mem_free(p);
  }
}

}  // namespace rill::detail

#endif
