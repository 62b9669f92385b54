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
      &poll_backend,
  };
  if (!name || !*name)
    return built_in[0];
  for (const backend_ops *ops : built_in)
    if (std::strcmp(ops->name, name) == 0)
      return ops;
  return nullptr;
}

}  // namespace rill::detail
