/// @file
/// rill — the C++ API: header-only, C++17, over the C API of rill.h and
/// nothing else (link with rill as a C program would). docs/cxx.md is the
/// guide; this comment is the contract.
///
/// Ownership. Every handle kind has an owner type: rill::base, rill::timer,
/// rill::io, rill::signal_watcher, rill::listener, rill::conn, rill::dialer,
/// rill::dns_query. Owners are movable and never copyable; destroying an
/// owner ends its handle (frees it, closes it, or cancels it), and from
/// then on none of the callables given to it runs again — so a callable may
/// capture `this` of the object that holds the owner. base_ref and conn_ref
/// are copyable non-owning views (what callbacks and captures use).
///
/// The close protocol (rill/base.h, rill/net.h), as C++ sees it:
///  - timers, io and signal watchers, listeners: close() or the destructor
///    frees the C handle at once, also from inside its own callback (the
///    running callable is destroyed when it returns); the owner is empty
///    afterwards and its calls return RILL_EINVAL (errc never reaches a
///    freed handle).
///  - connections: close() / close_now() / abort() begin closing; on_close
///    follows exactly once, from the loop. Before on_close runs the owner
///    forgets the C handle, so every call after it (through the owner or any
///    conn_ref, even inside on_close) returns errc::closed instead of using
///    a dead pointer. Destroying the owner closes an open connection
///    gracefully and mutes its callables; detach() instead leaves it running
///    on its callables until its on_close.
///  - dials and lookups: one completion; destroying the owner cancels and
///    mutes it, detach() lets it complete. dial() and resolve() are
///    [[nodiscard]] for that reason.
///  - the base: destroy it after every owner made on it; its destructor
///    runs the loop (without waiting, a bounded number of times) to deliver
///    the close reports of connections whose owners went away, then frees.
///
/// Callbacks are any callable, lambdas with captures included. Each handle
/// allocates once when it is created (a state object the C callbacks point
/// to, which owners move without touching); a callable of up to three
/// pointers is stored inside it, a larger one takes one allocation when it
/// is set. Dispatching an event allocates nothing: one indirect call. Posted
/// functions and write_ref completions travel in the C `void *arg` when
/// they are trivially copyable and pointer-sized (capture one pointer or
/// reference), else they take one allocation each.
///
/// Data arrives as std::string_view; errors are std::error_code in the
/// rill::category(), whose values are rill's negative codes and whose
/// messages are rill_strerror()'s ("connection refused", "i/o timeout"):
/// compare with rill::errc (ec == rill::errc::eof) or, for system errors,
/// with std::errc (ec == std::errc::connection_refused). Durations and
/// deadlines are std::chrono types (rill::clock is rill_time_now()'s clock).
/// Functions that create something throw std::system_error on failure, and
/// have a form taking a trailing std::error_code& that does not; every other
/// call returns a std::error_code.
///
/// Exceptions thrown by a callable are not caught: they propagate out of
/// base::run() (the C library is built for it, rill/base.h "Exceptions"),
/// and the base stays idle and usable — run it again and everything not yet
/// dispatched runs, exactly once. The owner whose callable threw is as the
/// callable left it. Callables run from a base's destruction (posted
/// functions still queued) must not throw: the destructor is noexcept.
///
/// Threads: as in C, a base and its handles belong to one thread; only
/// post() and stop() may be called from others.
#ifndef RILL_HPP
#define RILL_HPP

#if !defined(_MSC_VER) && __cplusplus < 201703L
#error "rill.hpp needs C++17 (-std=c++17)"
#endif

#include "rill/cxx/core.hpp"
#include "rill/cxx/dial.hpp"
#include "rill/cxx/net.hpp"
#include "rill/cxx/watchers.hpp"

#endif  // RILL_HPP
