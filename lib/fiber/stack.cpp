#include "fiber/stack.h"

#include <sys/mman.h>
#include <unistd.h>
#include <cerrno>
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

}  // namespace

int stack_alloc(size_t size, fiber_stack *out) {
  size_t page = page_size();
  // Rounding up and adding the guard page must not wrap: a size this close
  // to SIZE_MAX would round to 0 and map a stack with no room at all.
  if (size > SIZE_MAX - 2 * page)
    return RILL_EINVAL;
  size = (size + page - 1) & ~(page - 1);
  void *p = mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED)
    return -errno;
  if (mprotect(p, page, PROT_NONE) < 0) {
    int err = -errno;
    munmap(p, size + page);
    return err;
  }
  out->base = static_cast<char *>(p) + page;
  out->size = size;
  return 0;
}

void stack_reset(fiber_stack &s) {
#ifdef RILL_STACK_ASAN
  __asan_unpoison_memory_region(s.base, s.size);
#else
  (void)s;
#endif
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
