/** @file
 * rill — which declarations the library exports.
 *
 * RILL_API marks every public function. Its meaning depends on the object
 * format and on which side of the library the code is:
 *
 *  - ELF and Mach-O (Linux, the BSDs, macOS): the library is compiled with
 *    -fvisibility=hidden and RILL_API is visibility("default"), so the
 *    shared library exports exactly the RILL_API functions; the install test
 *    (test/install/check_exports.sh) fails on any other exported name. Users
 *    define nothing; RILL_STATIC makes no difference there.
 *
 *  - PE/COFF (Windows, Cygwin), where exports and imports are spelled out:
 *      building the DLL       RILL_BUILDING_SHARED  __declspec(dllexport)
 *      using the DLL          (nothing)             __declspec(dllimport)
 *      building or using the
 *      static library         RILL_STATIC           (nothing)
 *    RILL_BUILDING_SHARED is set by rill's CMakeLists.txt for the shared
 *    library only. A user of the static library must define RILL_STATIC, or
 *    every call goes through an import slot (__imp_rill_...) that the static
 *    library does not provide; CMake's rill::rill_static target and
 *    `pkg-config --static --cflags rill` define it, and whoever links
 *    librill.a by hand adds -DRILL_STATIC. The static library is built with
 *    RILL_STATIC, so a DLL that links it does not re-export rill. The same
 *    check script compiles and links both arrangements for Windows with
 *    clang and lld-link when they are installed.
 *
 * Elsewhere RILL_API is empty and every function is visible. */
#ifndef RILL_EXPORT_H
#define RILL_EXPORT_H

#if defined(_WIN32) || defined(__CYGWIN__)
#if defined(RILL_STATIC)
#define RILL_API
#elif defined(RILL_BUILDING_SHARED)
#define RILL_API __declspec(dllexport)
#else
#define RILL_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define RILL_API __attribute__((visibility("default")))
#else
#define RILL_API
#endif

#endif /* RILL_EXPORT_H */
