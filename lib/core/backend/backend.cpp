#include <cstring>

#include "core/backend/backend.h"

namespace rill::detail {

const backend_ops *backend_find(const char *name) {
  static const backend_ops *const built_in[] = {
#ifdef RILL_HAVE_EPOLL
      &epoll_backend,
#endif
#ifdef RILL_HAVE_KQUEUE
      &kqueue_backend,
#endif
#ifdef RILL_HAVE_IO_URING
      &io_uring_backend,
#endif
      &poll_backend,
  };
  if (!name || !*name)
    return built_in[0];
  for (const backend_ops *ops : built_in)
    if (std::strcmp(ops->name, name) == 0)
      return ops;
  // io_uring is refused at run time on many systems (container seccomp
  // profiles, kernel.io_uring_disabled), so a program that asks for it
  // must run on the fallback anyway; a build without it is one more such
  // system.
  if (std::strcmp(name, "io_uring") == 0)
    return built_in[0];
  return nullptr;
}

int backend_init(const backend_ops **ops, void **state) {
  int err = (*ops)->init(state);
#ifdef RILL_HAVE_IO_URING
  if (err && *ops == &io_uring_backend) {
    *ops = backend_find(nullptr);
    err = (*ops)->init(state);
  }
#endif
  return err;
}

}  // namespace rill::detail
