#include "fiber/stack.h"

#include <sys/mman.h>
#include <unistd.h>
#include <cstdint>

#include "rill/error.h"

#if defined(__SANITIZE_ADDRESS__)
#define RILL_STACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RILL_STACK_ASAN 1
#endif
#endif
#ifdef RILL_STACK_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace rill::detail {
namespace {

// Asked each time (libc answers from memory): a function-local static would
// need the C++ runtime's initialisation guard (lib/core/mutex.h says why the
// library avoids it).
size_t page_size() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

// The memory one page-table page maps (2 MiB with 4 KiB pages): a page of
// pointers, each to a page.
size_t page_table_span() { return page_size() / sizeof(void *) * page_size(); }

#ifdef RILL_STACK_ASAN
// Clears AddressSanitizer's poison over [begin, end). The public call
// memsets the shadow, which for an 8 MiB stack is 1 MiB written, and
// committed, per fiber: 10,000 fibers would commit 10 GiB of shadow. So
// the shadow's whole pages are handed back to the kernel instead (they
// come back as zeros: unpoisoned), and only the ragged ends are memset.
void asan_clear(char *begin, char *end) {
  size_t scale, offset;
  __asan_get_shadow_mapping(&scale, &offset);
  uintptr_t page = page_size();
  uintptr_t shadow_begin = (reinterpret_cast<uintptr_t>(begin) >> scale) + offset;
  uintptr_t shadow_end = (reinterpret_cast<uintptr_t>(end) >> scale) + offset;
  uintptr_t inner_begin = (shadow_begin + page - 1) & ~(page - 1);
  uintptr_t inner_end = shadow_end & ~(page - 1);
  if (inner_begin >= inner_end ||
      madvise(reinterpret_cast<void *>(inner_begin), inner_end - inner_begin, MADV_DONTNEED) != 0) {
    __asan_unpoison_memory_region(begin, static_cast<size_t>(end - begin));
    return;
  }
  auto *app_inner_begin = reinterpret_cast<char *>((inner_begin - offset) << scale);
  auto *app_inner_end = reinterpret_cast<char *>((inner_end - offset) << scale);
  __asan_unpoison_memory_region(begin, static_cast<size_t>(app_inner_begin - begin));
  __asan_unpoison_memory_region(app_inner_end, static_cast<size_t>(end - app_inner_end));
}
#endif

}  // namespace

int stack_alloc(size_t size, fiber_stack *out) {
  size_t page = page_size();
  // Rounding up and adding the guard page must not wrap: a size this close
  // to SIZE_MAX would round to 0 and map a stack with no room at all.
  if (size > SIZE_MAX - 2 * page)
    return RILL_EINVAL;
  size = (size + page - 1) & ~(page - 1);
  // A stack of a page-table span or more gets its top at a span boundary,
  // so the page-table page mapping its top (the part a fiber touches) maps
  // nothing else: when an idle fiber's pages are given back (idle.cpp),
  // the kernel frees that page-table page too (MADV_DONTNEED frees page
  // tables whose whole span it empties), and the fiber keeps no 4 KiB of
  // page tables. Costs up to a span of address space, never memory.
  size_t span = page_table_span();
  size_t slack = size >= span && size <= SIZE_MAX - page - span ? span : 0;
  size_t mapped = size + page + slack;
  void *p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  // ENOMEM for the address space or the map count, EAGAIN or EINVAL for
  // sizes the kernel will not map: all mean "no memory for this stack".
  if (p == MAP_FAILED)
    return RILL_ENOMEM;
  if (slack) {
    auto start = reinterpret_cast<uintptr_t>(p);
    uintptr_t top = (start + mapped) & ~(uintptr_t{span} - 1);
    uintptr_t guard = top - size - page;
    if (guard > start)
      munmap(p, guard - start);
    if (start + mapped > top)
      munmap(reinterpret_cast<void *>(top), start + mapped - top);
    p = reinterpret_cast<void *>(guard);
  }
#ifdef MADV_NOHUGEPAGE
  // Where transparent huge pages are "always", the first touch of a
  // 2 MiB-aligned stack would commit a whole huge page: an idle fiber
  // would cost 2 MiB instead of a page or two. Advice only; a kernel
  // without THP says EINVAL, which changes nothing.
  (void)madvise(p, size + page, MADV_NOHUGEPAGE);
#endif
  // Splitting the mapping in two can exceed vm.max_map_count (ENOMEM).
  if (mprotect(p, page, PROT_NONE) < 0) {
    munmap(p, size + page);
    return RILL_ENOMEM;
  }
  out->base = static_cast<char *>(p) + page;
  out->size = size;
  return 0;
}

void stack_reset(fiber_stack &s) {
#ifdef RILL_STACK_ASAN
  asan_clear(static_cast<char *>(s.base), static_cast<char *>(s.base) + s.size);
#else
  (void)s;
#endif
}

bool stack_used_below(const fiber_stack &s, size_t keep, const void *deepest_sp) {
  size_t page = page_size();
  keep = (keep + page - 1) & ~(page - 1);
  if (keep >= s.size)
    return false;
  const char *limit = static_cast<const char *>(s.base) + s.size - keep;
  if (static_cast<const char *>(deepest_sp) < limit)
    return true;
#ifdef RILL_STACK_ASAN
  return true;  // the page may hold stale poison: do not read it, release it
#else
  // Reading a page never touched maps the shared zero page: no memory.
  const auto *word = reinterpret_cast<const uint64_t *>(limit - page);
  uint64_t any = 0;
  for (size_t i = 0; i < page / sizeof *word; i++)
    any |= word[i];
  return any != 0;
#endif
}

void stack_release_pages(const fiber_stack &s, size_t keep) {
  size_t page = page_size();
  keep = (keep + page - 1) & ~(page - 1);
  if (keep >= s.size)
    return;
  // Cheap when the fiber stayed shallow: the kernel walks page tables with
  // nothing in them. Advice only: should it fail, the pages stay, and the
  // stack works all the same.
  (void)madvise(s.base, s.size - keep, MADV_DONTNEED);
}

void stack_free(fiber_stack &s) {
  if (!s.base)
    return;
  stack_reset(s);
  size_t page = page_size();
  munmap(static_cast<char *>(s.base) - page, s.size + page);
  s.base = nullptr;
}

}  // namespace rill::detail
