// Included first into every C++ file of the library (CMakeLists.txt,
// `-include`), so that librill.a asks nothing of the C++ runtime and a C
// program links it with `cc app.c librill.a -lcares -pthread`.
//
// The rest of that promise is kept by what the library does not use:
// nothing that throws (std::mutex, std::call_once: lib/core/mutex.h
// replaces them), no operator new (lib/core/alloc.h), no RTTI
// (-fno-rtti), no function-local statics with dynamic initialisation (they
// need the runtime's __cxa_guard_*), and with clang -fno-cxx-exceptions
// (its noexcept handler calls std::terminate; GCC's personality routine
// does that instead). test/install/check_static.sh fails on any reference
// to the C++ runtime that comes back.
//
// This file handles the one reference that exceptions leave. rill is
// compiled with exceptions, so that a C++ exception thrown by a user
// callback unwinds through it and runs its guards (lifetime.h, 6). Code
// compiled that way names the C++ personality routine, __gxx_personality_v0,
// in its unwind tables; the routine lives in libstdc++ (libc++abi for
// libc++). The reference is made weak:
//  - a program that can throw a C++ exception has the C++ runtime, so there
//    the name resolves to the real routine and unwinding runs rill's guards
//    exactly as with a strong reference;
//  - in a C program without the runtime it resolves to null, and the
//    unwinder passes through rill's frames as through C frames: there is no
//    C++ exception to unwind there, and a forced unwind (pthread_exit from a
//    callback) skips rill's guards as it skips C code's.
// _Unwind_Resume, the other name such code uses, is in libgcc, which every C
// program links.
#ifndef RILL_CORE_CXX_RUNTIME_H
#define RILL_CORE_CXX_RUNTIME_H

#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
__asm__(".weak __gxx_personality_v0");
#endif

#endif
