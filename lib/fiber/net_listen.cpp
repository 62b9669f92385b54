// Blocking listen and accept for fibers, over a plain listener or a TLS
// one (whose connections come after their handshake).
//
// The listener accepts only while a fiber waits in rill_net_accept(), so
// connections nobody asked for stay in the kernel's backlog, as they do for
// a Go listener until Accept is called (G9: a full backlog stays full).
// An accept deadline (Go's TCPListener.SetDeadline, G33) is one timer per
// listener, armed only while a fiber waits in accept (so a deadline nobody
// waits under keeps no loop alive): when it fires, every parked acceptor
// wakes with RILL_ETIMEOUT and accepting pauses again, so what arrives later
// waits in the backlog.
#include <cstring>

#include "core/vec.h"
#include "fiber/net_impl.h"
#include "net/op_error.h"
#include "rill/tls.h"

// Lifetime (core/lifetime.h): held by its user until
// rill_net_listener_free(), and by every fiber inside rill_net_accept().
// rill_net_listener_close() closes the callback-API listener at once (it has
// no close callback) and wakes every parked acceptor with RILL_ECLOSED: the
// handle is CLOSED, every later call says RILL_ECLOSED, and the last
// release frees it.
struct rill_net_listener {
  rill::detail::life lifetime;
  rill_listener *listener;  // nullptr once closed; a TLS listener's own
  rill_tls_listener *tls = nullptr;  // the TLS listener, if it is one
  rill_base *base;
  bool user_released = false;
  // Accepted connections no fiber has taken yet, oldest at ready_head.
  rill::detail::vec<rill_conn *> ready;
  size_t ready_head = 0;
  rill::detail::fiber_queue acceptors;
  int pending_error = 0;  // an accept error to hand the next acceptor
  uint64_t deadline = 0;  // absolute, on rill_time_now()'s clock; 0: none
  rill_timer *deadline_timer = nullptr;  // made by the first deadline
  char addr[RILL_ADDRSTRLEN] = "";  // Go's Addr() still answers after Close
  bool is_unix = false;             // for error texts, after Close too
};

namespace rill::detail {
namespace {

void release(rill_net_listener *nl) {
  if (!life_release(nl->lifetime))
    return;
  destroy(nl);
}

using hold = held<rill_net_listener, release>;

bool ready_empty(const rill_net_listener *nl) { return nl->ready_head == nl->ready.size(); }

bool deadline_passed(const rill_net_listener *nl) {
  return nl->deadline && rill_time_now() >= nl->deadline;
}

// Every parked acceptor gives up with RILL_ETIMEOUT; with nobody left to
// accept for, new connections stay in the kernel's backlog. A fiber already
// woken for an accepted connection is off the queue and still gets it.
void expire_acceptors(rill_net_listener *nl) {
  fiber_wake_all(nl->acceptors, RILL_ETIMEOUT);
  if (nl->listener)
    rill_listener_stop(nl->listener);
}

void on_deadline(rill_timer *, void *arg) { expire_acceptors(static_cast<rill_net_listener *>(arg)); }

// Runs the timer for the deadline while acceptors are parked, and stops it
// otherwise; a deadline already past expires them now.
void arm_deadline(rill_net_listener *nl) {
  if (!nl->deadline_timer)
    return;
  if (!nl->deadline || nl->acceptors.empty()) {
    rill_timer_stop(nl->deadline_timer);
    return;
  }
  uint64_t now = rill_time_now();
  if (now >= nl->deadline) {
    rill_timer_stop(nl->deadline_timer);
    expire_acceptors(nl);
    return;
  }
  rill_timer_start(nl->deadline_timer, nl->deadline - now, 0);
}

rill_conn *ready_pop(rill_net_listener *nl) {
  rill_conn *conn = nl->ready[nl->ready_head++];
  if (ready_empty(nl)) {
    nl->ready.clear();
    nl->ready_head = 0;
  }
  return conn;
}

// Hands an accept error to the next acceptor (Go hands accept errors, such
// as EMFILE, to Accept's caller), or keeps it for the next one to come.
void report_error(rill_net_listener *nl, int status) {
  if (rill_fiber *f = nl->acceptors.pop())
    fiber_unpark(f, status);
  else
    nl->pending_error = status;
}

void on_accept(rill_listener *l, rill_conn *conn, int status, void *arg) {
  auto *nl = static_cast<rill_net_listener *>(arg);
  if (status < 0) {
    report_error(nl, status);
    return;
  }
  if (!nl->ready.push(conn)) {
    // Out of memory to queue it: the connection is refused, and the
    // acceptor hears why.
    rill_conn_abort(conn);
    report_error(nl, RILL_ENOMEM);
    return;
  }
  if (rill_fiber *f = nl->acceptors.pop())
    fiber_unpark(f, 0);
  if (nl->acceptors.empty())
    rill_listener_stop(l);  // the next one waits in the backlog
}

void on_tls_accept(rill_tls_listener *tl, rill_conn *conn, int status, void *arg) {
  on_accept(rill_tls_listener_listener(tl), conn, status, arg);
}

int accept_held(rill_net_listener *nl, rill_net_conn **out) {
  int err = 0;
  // Go checks the deadline before every attempt, a connection waiting
  // included: that one stays for the next accept.
  while (nl->lifetime.open() && !deadline_passed(nl) && ready_empty(nl) && !nl->pending_error &&
         !err) {
    rill_listener_start(nl->listener);
    if (nl->deadline) {
      // Checked above, but the clock moved since: never a negative wait.
      uint64_t now = rill_time_now();
      rill_timer_start(nl->deadline_timer, nl->deadline > now ? nl->deadline - now : 0, 0);
    }
    err = fiber_wait(nl->acceptors);
  }
  if (nl->acceptors.empty() && nl->deadline_timer)
    rill_timer_stop(nl->deadline_timer);
  if (!nl->lifetime.open())
    return RILL_ECLOSED;
  if (err)
    return err;
  if (deadline_passed(nl))
    return RILL_ETIMEOUT;
  if (nl->pending_error) {
    err = nl->pending_error;
    nl->pending_error = 0;
    return err;
  }
  rill_conn *conn = ready_pop(nl);
  *out = net_conn_wrap(conn);
  if (!*out) {
    rill_conn_abort(conn);
    return RILL_ENOMEM;
  }
  return 0;
}

// rill_net_listen and rill_net_tls_listen: `tls` null for a plain one.
int listen_on(const char *network, const char *address, const rill_socket_config *options,
              rill_tls_config *tls, rill_net_listener **out) {
  rill_base *base = rill_fiber_base();
  if (!base)
    return RILL_ENOTFIBER;
  if (!out)
    return RILL_EINVAL;
  auto *nl = make<rill_net_listener>();
  if (!nl)
    return RILL_ENOMEM;
  nl->base = base;
  int err = tls ? rill_tls_listen(base, network, address, options, tls, on_tls_accept, nl, &nl->tls)
                : rill_listen(base, network, address, options, on_accept, nl, &nl->listener);
  if (err) {
    destroy(nl);
    return err;
  }
  if (nl->tls)
    nl->listener = rill_tls_listener_listener(nl->tls);
  rill_listener_stop(nl->listener);  // until someone accepts
  rill_listener_addr(nl->listener, nl->addr, sizeof nl->addr);
  nl->is_unix = !std::strcmp(network, "unix");
  *out = nl;
  return 0;
}

}  // namespace
}  // namespace rill::detail

using namespace rill::detail;

extern "C" {

int rill_net_listen(const char *network, const char *address, const rill_socket_config *options,
                    rill_net_listener **out) {
  return listen_on(network, address, options, nullptr, out);
}

int rill_net_tls_listen(const char *network, const char *address, const rill_socket_config *options,
                        rill_tls_config *config, rill_net_listener **out) {
  if (!config)
    return RILL_EINVAL;
  return listen_on(network, address, options, config, out);
}

int rill_net_accept(rill_net_listener *nl, rill_net_conn **out) {
  if (!nl || !out)
    return RILL_EINVAL;
  if (!rill_fiber_current())
    return RILL_ENOTFIBER;
  if (!nl->lifetime.open())
    return RILL_ECLOSED;
  hold inside(nl);  // across the park: a close or free meanwhile frees nothing
  return accept_held(nl, out);
}

int rill_net_listener_addr(const rill_net_listener *nl, char *buf, size_t size) {
  if (!nl || !buf || std::strlen(nl->addr) >= size)
    return RILL_EINVAL;
  std::strcpy(buf, nl->addr);
  return static_cast<int>(std::strlen(buf));
}

int rill_net_listener_format_error(const rill_net_listener *nl, const char *op, int err, char *buf,
                                   size_t size) {
  if (!nl)
    return RILL_EINVAL;
  return format_listener_error(buf, size, op, nl->is_unix ? "unix" : "tcp", nl->addr, err);
}

int rill_net_listener_set_deadline(rill_net_listener *nl, uint64_t when) {
  if (!nl)
    return RILL_EINVAL;
  if (!nl->lifetime.open())
    return RILL_ECLOSED;
  if (when && !nl->deadline_timer) {
    int err = rill_timer_new(nl->base, on_deadline, nl, &nl->deadline_timer);
    if (err)
      return err;  // the old deadline stands
  }
  nl->deadline = when;
  arm_deadline(nl);  // parked acceptors wait under the new deadline, as in Go
  return 0;
}

int rill_net_listener_close(rill_net_listener *nl) {
  if (!nl)
    return RILL_EINVAL;
  if (!nl->lifetime.open())
    return RILL_ECLOSED;
  nl->lifetime.state = life_state::closed;  // no close report: closed at once
  if (nl->tls)
    rill_tls_listener_free(nl->tls);  // and the connections in their handshake
  else
    rill_listener_free(nl->listener);
  nl->listener = nullptr;
  nl->tls = nullptr;
  rill_timer_free(nl->deadline_timer);
  nl->deadline_timer = nullptr;
  while (!ready_empty(nl))
    rill_conn_abort(ready_pop(nl));
  fiber_wake_all(nl->acceptors, RILL_ECLOSED);
  return 0;
}

void rill_net_listener_free(rill_net_listener *nl) {
  if (!nl || nl->user_released)
    return;
  rill_net_listener_close(nl);
  nl->user_released = true;
  release(nl);
}

}  // extern "C"
