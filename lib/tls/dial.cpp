// rill_tls_dial: rill_dial, then the client handshake, reported once.
//
// The dial's timeout covers both (Go's tls.DialWithDialer): the handshake
// gets what the connect left of it. A cancel during the connect goes to
// rill_dial, whose report then carries RILL_ECANCELED; during the
// handshake the connection is dropped and the report comes from a timer,
// never from inside rill_tls_dialer_cancel().
#include <cstdio>
#include <cstring>

#include "core/alloc.h"
#include "core/clock.h"
#include "tls/tls_impl.h"

using namespace rill::detail;

struct rill_tls_dialer {
  rill_base *base = nullptr;
  rill_tls_config *config = nullptr;
  rill_tls_dial_cb on_done = nullptr;
  void *arg = nullptr;
  rill_dialer *inner = nullptr;  // while connecting
  rill_conn *conn = nullptr;     // while in the handshake
  rill_timer *later = nullptr;   // reports a cancel made during the handshake
  uint64_t deadline = 0;
  int status = 0;
  bool reporting = false;
  char host[256] = "";
  char text[384] = "";  // the error as rill_tls_dialer_format_error gives it
  // A connect that failed with one of rill's own codes: the dial's words
  // before the error's ("dial tcp 127.0.0.1:1: "), so that a code the
  // caller puts in its place (the blocking facade: a context's deadline for
  // the cancel it caused) reads as the dial would word it.
  char dial_prefix[352] = "";
};

namespace {

void report(rill_tls_dialer *d, rill_conn *conn, int status) {
  d->status = status;
  d->reporting = true;
  d->on_done(d, conn, status, d->arg);
  rill_timer_free(d->later);
  rill_tls_config_unref(d->config);
  destroy(d);
}

// Go's texts for a handshake that failed. Past the dial's timeout: Go 1.17
// and later bound the handshake by a context with that timeout
// (tls.DialWithDialer as tls.Dialer), and say what the context says.
void word_failure(rill_tls_dialer *d, const tls_conn *t, int status) {
  if (status == RILL_ETIMEOUT) {
    std::snprintf(d->text, sizeof d->text, "%s", rill_strerror(RILL_ECTX_DEADLINE));
  } else if (status == RILL_ETLS_HOSTNAME && t && t->verify_text[0]) {
    std::snprintf(d->text, sizeof d->text, "tls: failed to verify certificate: %s", t->verify_text);
  } else if (status == RILL_ETLS_UNKNOWN_AUTHORITY || status == RILL_ETLS_EXPIRED ||
             status == RILL_ETLS_BAD_CERT || status == RILL_ETLS_HOSTNAME) {
    std::snprintf(d->text, sizeof d->text, "tls: failed to verify certificate: %s",
                  rill_strerror(status));
  } else {
    std::snprintf(d->text, sizeof d->text, "%s", rill_strerror(status));
  }
}

void on_handshake(tls_conn *t, int status, void *arg) {
  auto *d = static_cast<rill_tls_dialer *>(arg);
  rill_conn *conn = d->conn;
  d->conn = nullptr;
  if (status == 0) {
    report(d, conn, 0);
    return;
  }
  word_failure(d, t, status);
  rill_conn_close_now(conn);
  report(d, nullptr, status);
}

void keep_dial_prefix(rill_tls_dialer *d, int status) {
  // rill's own codes (a cancel, a timeout) name no failed call before
  // their text, unlike an errno ("connect: connection refused").
  if (status > -10000)
    return;
  size_t len = std::strlen(d->text), own = std::strlen(rill_strerror(status));
  if (len >= own && len - own < sizeof d->dial_prefix &&
      std::strcmp(d->text + len - own, rill_strerror(status)) == 0)
    std::snprintf(d->dial_prefix, sizeof d->dial_prefix, "%.*s", static_cast<int>(len - own), d->text);
}

void on_connected(rill_dialer *inner, rill_conn *conn, int status, void *arg) {
  auto *d = static_cast<rill_tls_dialer *>(arg);
  d->inner = nullptr;
  if (status < 0) {
    rill_dialer_format_error(inner, status, d->text, sizeof d->text);
    keep_dial_prefix(d, status);
    report(d, nullptr, status);
    return;
  }
  d->conn = conn;
  int err = tls_handshake_start(conn, d->config, false, d->host, d->deadline, on_handshake, d);
  if (err < 0) {
    d->conn = nullptr;
    rill_conn_close_now(conn);
    std::snprintf(d->text, sizeof d->text, "%s", rill_strerror(err));
    report(d, nullptr, err);
  }
}

void on_later(rill_timer *, void *arg) {
  auto *d = static_cast<rill_tls_dialer *>(arg);
  std::snprintf(d->text, sizeof d->text, "%s", rill_strerror(RILL_ECANCELED));
  report(d, nullptr, RILL_ECANCELED);
}

}  // namespace

extern "C" {

int rill_tls_dial(rill_base *base, const char *network, const char *address,
                  const rill_socket_config *options, rill_tls_config *config,
                  rill_tls_dial_cb on_done, void *arg, rill_tls_dialer **out) {
  if (out)
    *out = nullptr;
  if (!base || !network || !address || !config || !on_done || config->role != RILL_TLS_CLIENT)
    return RILL_EINVAL;
  auto *d = make<rill_tls_dialer>();
  if (!d)
    return RILL_ENOMEM;
  char zone[64];
  int port = 0;
  // The name to verify: the host dialed (a Unix path has none; the config
  // must then name one, or skip verification).
  if (std::strcmp(network, "unix") != 0 &&
      split_host_port(address, d->host, sizeof d->host, zone, sizeof zone, &port) < 0)
    d->host[0] = '\0';  // rill_dial gives the address's own error below
  d->base = base;
  d->config = config;
  rill_tls_config_ref(config);
  d->on_done = on_done;
  d->arg = arg;
  if (options && options->timeout)
    d->deadline = monotonic_ns() + options->timeout;
  int err = rill_timer_new(base, on_later, d, &d->later);
  if (err == 0)
    err = rill_dial(base, network, address, options, on_connected, d, &d->inner);
  if (err < 0) {
    rill_timer_free(d->later);
    rill_tls_config_unref(config);
    destroy(d);
    return err;
  }
  if (out)
    *out = d;
  return 0;
}

int rill_tls_dialer_cancel(rill_tls_dialer *dialer) {
  if (!dialer)
    return RILL_EINVAL;
  if (dialer->reporting)
    return RILL_ECLOSED;
  if (dialer->inner)
    return rill_dialer_cancel(dialer->inner);
  if (dialer->conn) {
    tls_handshake_abandon(tls_of(dialer->conn));
    rill_conn_close_now(dialer->conn);
    dialer->conn = nullptr;
    rill_timer_start(dialer->later, 0, 0);
  }
  return 0;
}

int rill_tls_dialer_format_error(const rill_tls_dialer *dialer, int err, char *buf, size_t size) {
  if (!dialer || (!buf && size))
    return RILL_EINVAL;
  if (err == dialer->status && dialer->text[0])
    return std::snprintf(buf, size, "%s", dialer->text);
  return std::snprintf(buf, size, "%s%s", dialer->dial_prefix, rill_strerror(err));
}

}  // extern "C"
