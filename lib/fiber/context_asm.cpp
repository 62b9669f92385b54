// Preparing new contexts for the assembly switch (switch_<arch>.S).
#include <cstdint>
#include <cstring>

#include "fiber/context.h"

extern "C" void rill__context_switch(void **from, void *to);
extern "C" void rill__context_trampoline();

namespace rill::detail {

const bool context_saves_exact_sp = true;

void *context_make(void *stack_base, size_t stack_size, context_fn fn, void *arg) {
  auto top = (reinterpret_cast<uintptr_t>(stack_base) + stack_size) & ~uintptr_t{15};
#if defined(__x86_64__)
  // Popped by the switch: mxcsr/x87 word (8 bytes), r15, r14, r13, r12, rbx,
  // rbp, then the return address. After the return rsp = top - 16, aligned.
  auto *sp = reinterpret_cast<uint64_t *>(top - 16 - 8 - 6 * 8 - 8);
  uint32_t mxcsr;
  uint16_t fpucw;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  __asm__ volatile("fnstcw %0" : "=m"(fpucw));
  std::memset(sp, 0, 8 * 8);
  std::memcpy(sp, &mxcsr, 4);
  std::memcpy(reinterpret_cast<char *>(sp) + 4, &fpucw, 2);
  sp[1] = 0;                                  // r15
  sp[2] = 0;                                  // r14
  sp[3] = reinterpret_cast<uint64_t>(arg);    // r13
  sp[4] = reinterpret_cast<uint64_t>(fn);     // r12
  sp[5] = 0;                                  // rbx
  sp[6] = 0;                                  // rbp: ends frame-pointer walks
  sp[7] = reinterpret_cast<uint64_t>(&rill__context_trampoline);
  return sp;
#elif defined(__aarch64__)
  auto *sp = reinterpret_cast<uint64_t *>(top - 160);
  std::memset(sp, 0, 160);
  sp[0] = reinterpret_cast<uint64_t>(fn);     // x19
  sp[1] = reinterpret_cast<uint64_t>(arg);    // x20
  sp[11] = reinterpret_cast<uint64_t>(&rill__context_trampoline);  // x30
  return sp;
#else
#error "context_asm.cpp is for x86-64 and AArch64; other targets use context_ucontext.cpp"
#endif
}

void context_switch(void **from, void *to) { rill__context_switch(from, to); }

}  // namespace rill::detail
