// Blocking listen, accept and dial for fibers.
//
// The listener accepts only while a fiber waits in rill_net_accept(), so
// connections nobody asked for stay in the kernel's backlog, as they do for
// a Go listener until Accept is called (G9: a full backlog stays full).
#include <cstdio>
#include <cstring>
#include <deque>
#include <new>

#include "fiber/net_impl.h"

struct rill_net_listener {
  rill_listener *listener;
  std::deque<rill_conn *> ready;
  rill::detail::fiber_queue acceptors;
  int pending_error = 0;  // an accept error to hand the next acceptor
  bool closed = false;
  int inside = 0;
};

namespace rill::detail {
namespace {

void on_accept(rill_listener *l, rill_conn *conn, int status, void *arg) {
  auto *nl = static_cast<rill_net_listener *>(arg);
  if (status < 0) {
    // Go hands accept errors to Accept's caller (EMFILE, say): the next
    // acceptor gets it.
    if (rill_fiber *f = nl->acceptors.pop())
      fiber_unpark(f, status);
    else
      nl->pending_error = status;
    return;
  }
  nl->ready.push_back(conn);
  if (rill_fiber *f = nl->acceptors.pop())
    fiber_unpark(f, 0);
  if (nl->acceptors.empty())
    rill_listener_pause(l);  // the next one waits in the backlog
}

void maybe_free(rill_net_listener *nl) {
  if (nl->closed && nl->inside == 0)
    delete nl;
}

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

int rill_net_listen(const char *network, const char *address, const rill_net_options *options,
                    rill_net_listener **out) {
  rill_base *base = rill_fiber_base();
  if (!base)
    return RILL_ENOTFIBER;
  if (!out)
    return RILL_EINVAL;
  auto *nl = new (std::nothrow) rill_net_listener();
  if (!nl)
    return RILL_ENOMEM;
  int err = rill_listen(base, network, address, options, on_accept, nl, &nl->listener);
  if (err) {
    delete nl;
    return err;
  }
  rill_listener_pause(nl->listener);  // until someone accepts
  *out = nl;
  return 0;
}

int rill_net_accept(rill_net_listener *nl, rill_net_conn **out) {
  if (!nl || !out)
    return RILL_EINVAL;
  rill_fiber *self = rill_fiber_current();
  if (!self)
    return RILL_ENOTFIBER;
  if (nl->closed)
    return RILL_ECLOSED;
  nl->inside++;
  int err = 0;
  while (!nl->closed && nl->ready.empty() && !nl->pending_error && !err) {
    rill_listener_resume(nl->listener);
    err = fiber_wait(nl->acceptors);
  }
  if (!err && nl->pending_error) {
    err = nl->pending_error;
    nl->pending_error = 0;
  }
  if (!err && nl->closed)
    err = RILL_ECLOSED;
  if (!err) {
    rill_conn *conn = nl->ready.front();
    nl->ready.pop_front();
    *out = net_conn_wrap(conn);
    if (!*out) {
      rill_conn_abort(conn);
      err = RILL_ENOMEM;
    }
  }
  nl->inside--;
  maybe_free(nl);
  return err;
}

int rill_net_listener_addr(const rill_net_listener *nl, char *buf, size_t size) {
  if (!nl || nl->closed)
    return nl ? RILL_ECLOSED : RILL_EINVAL;
  return rill_listener_addr(nl->listener, buf, size);
}

void rill_net_listener_close(rill_net_listener *nl) {
  if (!nl || nl->closed)
    return;
  nl->closed = true;
  rill_listener_close(nl->listener);
  for (rill_conn *conn : nl->ready)
    rill_conn_abort(conn);
  nl->ready.clear();
  fiber_wake_all(nl->acceptors, RILL_ECLOSED);
  maybe_free(nl);
}

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
