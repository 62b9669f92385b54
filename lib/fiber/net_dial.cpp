// Blocking dial for fibers: the callback API's rill_dial(), with the
// fiber parked until its one completion.
#include "fiber/net_impl.h"

namespace rill::detail {
namespace {

struct dial_wait {
  rill_fiber *fiber;
  rill_conn *conn = nullptr;
  char *errbuf;
  size_t errbuf_size;
};

void on_dial(rill_dialer *d, rill_conn *conn, int status, void *arg) {
  auto *w = static_cast<dial_wait *>(arg);
  w->conn = conn;
  if (status && w->errbuf && w->errbuf_size)
    rill_dialer_format_error(d, status, w->errbuf, w->errbuf_size);
  fiber_unpark(w->fiber, status);
}

}  // namespace
}  // namespace rill::detail

using namespace rill::detail;

extern "C" {

int rill_net_dial(const char *network, const char *address, const rill_net_options *options,
                  rill_net_conn **out, char *errbuf, size_t errbuf_size) {
  rill_base *base = rill_fiber_base();
  if (!base)
    return RILL_ENOTFIBER;
  if (!out)
    return RILL_EINVAL;
  if (errbuf && errbuf_size)
    errbuf[0] = '\0';
  dial_wait w{rill_fiber_current(), nullptr, errbuf, errbuf_size};
  int err = rill_dial(base, network, address, options, on_dial, &w, nullptr);
  if (err) {
    if (errbuf && errbuf_size)
      rill_format_op_error(errbuf, errbuf_size, "dial", network ? network : "?", nullptr, address, nullptr,
                           err);
    return err;
  }
  err = fiber_park();
  if (err)
    return err;
  *out = net_conn_wrap(w.conn);
  if (!*out) {
    rill_conn_abort(w.conn);
    return RILL_ENOMEM;
  }
  return 0;
}

}  // extern "C"
