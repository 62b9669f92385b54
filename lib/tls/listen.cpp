// rill_tls_listen: rill_listen, and the server handshake with each
// connection before on_accept sees it.
//
// A handshake that fails never reaches on_accept (the error hook hears
// it), and each one is bounded by the config's handshake timeout, so a
// client that connects and sends nothing (or sends slowly) is dropped
// rather than held for ever. The connections still in their handshake are
// listed, so that freeing the listener drops them too.
//
// Lifetime: the listener is held across its callbacks (`dispatching`); a
// free from inside one takes effect when the callback returns.
#include <cstdio>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/list.h"
#include "tls/tls_impl.h"

using namespace rill::detail;

namespace {

struct pending_handshake {
  list_node link;
  rill_tls_listener *listener;
  rill_conn *conn;
};

}  // namespace

struct rill_tls_listener {
  rill_listener *inner = nullptr;
  rill_tls_config *config = nullptr;
  rill_tls_accept_cb on_accept = nullptr;
  void *arg = nullptr;
  rill_tls_handshake_error_cb on_error = nullptr;
  void *error_arg = nullptr;
  list handshakes;
  int dispatching = 0;
  bool freed = false;
};

namespace {

void finish_free(rill_tls_listener *l) {
  rill_tls_config_unref(l->config);
  destroy(l);
}

void leave(rill_tls_listener *l) {
  if (--l->dispatching == 0 && l->freed)
    finish_free(l);
}

void on_handshake(tls_conn *, int status, void *arg) {
  auto *p = static_cast<pending_handshake *>(arg);
  rill_tls_listener *l = p->listener;
  rill_conn *conn = p->conn;
  list::remove(&p->link);
  destroy(p);
  l->dispatching++;
  if (status == 0) {
    l->on_accept(l, conn, 0, l->arg);
  } else {
    char remote[RILL_ADDRSTRLEN] = "";
    rill_conn_remote_addr(conn, remote, sizeof remote);
    rill_conn_close_now(conn);
    if (l->on_error && !l->freed) {
      char text[RILL_ADDRSTRLEN + 128];
      std::snprintf(text, sizeof text, "TLS handshake error from %s: %s", remote, rill_strerror(status));
      l->on_error(l, status, text, l->error_arg);
    }
  }
  leave(l);
}

void on_tcp_accept(rill_listener *, rill_conn *conn, int status, void *arg) {
  auto *l = static_cast<rill_tls_listener *>(arg);
  if (status < 0) {
    l->dispatching++;
    l->on_accept(l, nullptr, status, l->arg);
    leave(l);
    return;
  }
  auto *p = make<pending_handshake>();
  uint64_t timeout = l->config->handshake_timeout;
  int err = p ? 0 : RILL_ENOMEM;
  if (p) {
    p->listener = l;
    p->conn = conn;
    err = tls_handshake_start(conn, l->config, true, nullptr, timeout ? monotonic_ns() + timeout : 0,
                              on_handshake, p);
  }
  if (err < 0) {
    destroy(p);
    rill_conn_abort(conn);
    return;
  }
  l->handshakes.push_back(&p->link);
}

}  // namespace

extern "C" {

int rill_tls_listen(rill_base *base, const char *network, const char *address,
                    const rill_socket_config *options, rill_tls_config *config,
                    rill_tls_accept_cb on_accept, void *arg, rill_tls_listener **out) {
  if (!out)
    return RILL_EINVAL;
  *out = nullptr;
  if (!base || !network || !address || !config || !on_accept || config->role != RILL_TLS_SERVER ||
      !config->cert_file)
    return RILL_EINVAL;
  auto *l = make<rill_tls_listener>();
  if (!l)
    return RILL_ENOMEM;
  l->config = config;
  rill_tls_config_ref(config);
  l->on_accept = on_accept;
  l->arg = arg;
  int err = config_prepare(config);
  if (err == 0)
    err = rill_listen(base, network, address, options, on_tcp_accept, l, &l->inner);
  if (err < 0) {
    finish_free(l);
    return err;
  }
  *out = l;
  return 0;
}

int rill_tls_listener_set_error_hook(rill_tls_listener *listener, rill_tls_handshake_error_cb cb,
                                     void *arg) {
  if (!listener || listener->freed)
    return RILL_EINVAL;
  listener->on_error = cb;
  listener->error_arg = arg;
  return 0;
}

rill_listener *rill_tls_listener_listener(rill_tls_listener *listener) {
  return listener && !listener->freed ? listener->inner : nullptr;
}

void rill_tls_listener_free(rill_tls_listener *listener) {
  if (!listener || listener->freed)
    return;
  listener->freed = true;
  rill_listener_free(listener->inner);
  listener->inner = nullptr;
  while (list_node *n = listener->handshakes.pop_front()) {
    auto *p = RILL_CONTAINER_OF(n, pending_handshake, link);
    tls_handshake_abandon(tls_of(p->conn));
    rill_conn_abort(p->conn);
    destroy(p);
  }
  if (listener->dispatching == 0)
    finish_free(listener);
}

}  // extern "C"
