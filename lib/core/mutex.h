// Mutexes on pthreads, without the C++ runtime.
//
// std::mutex reports a failed lock by throwing std::system_error, and
// std::call_once goes through libstdc++'s once machinery: either one makes
// every program that links librill.a link libstdc++ too. rill is a C library
// to its users, and `cc app.c librill.a -lcares -pthread` must link (README,
// "Use rill in your project"; test/install/check_static.sh checks that the
// archive asks for nothing from the C++ runtime). So the library locks with
// these instead.
//
// A default pthread mutex cannot fail to lock or unlock when used correctly
// (the errors POSIX lists are for recursive, error-checking or robust
// mutexes, or an uninitialised one), so the results are not checked.
#ifndef RILL_CORE_MUTEX_H
#define RILL_CORE_MUTEX_H

#include <pthread.h>

namespace rill::detail {

// A mutex owned by an object (a base): destroyed with it, which matters where
// pthread_mutex_t holds memory (FreeBSD allocates on first use).
class mutex {
 public:
  mutex() noexcept = default;
  ~mutex() { pthread_mutex_destroy(&m_); }
  mutex(const mutex &) = delete;
  mutex &operator=(const mutex &) = delete;

  pthread_mutex_t &native() noexcept { return m_; }

 private:
  pthread_mutex_t m_ = PTHREAD_MUTEX_INITIALIZER;
};

// Holds a mutex for the rest of a scope, released by return or by an
// exception from a callback. A process-wide mutex is a plain
// `pthread_mutex_t = PTHREAD_MUTEX_INITIALIZER` (statically initialised,
// never destroyed, so usable from other threads while the process exits).
class mutex_lock {
 public:
  explicit mutex_lock(pthread_mutex_t &m) noexcept : m_(m) { pthread_mutex_lock(&m_); }
  explicit mutex_lock(mutex &m) noexcept : mutex_lock(m.native()) {}
  ~mutex_lock() { pthread_mutex_unlock(&m_); }
  mutex_lock(const mutex_lock &) = delete;
  mutex_lock &operator=(const mutex_lock &) = delete;

 private:
  pthread_mutex_t &m_;
};

}  // namespace rill::detail

#endif
