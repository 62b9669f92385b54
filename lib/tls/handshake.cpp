// The handshake: drives SSL_do_handshake from the connection's readiness
// (a conn_io_hook, so the connection's own read and write paths stay out
// of the way) until it finishes, fails, or its deadline passes.
//
// A handshake counts as finished only once its last flight (a client's
// Finished, a server's session tickets) is wholly in the kernel: a
// connection handed to a user who never writes would otherwise keep it.
// One exception: a TLS 1.3 server's ticket may wait for the reply to a
// request that came with the client's Finished, at most until the kick
// that reads that request has run (conn.cpp, "The session ticket").
#include <arpa/inet.h>
#include <strings.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <cstdio>
#include <cstring>

#include "core/alloc.h"
#include "core/clock.h"
#include "tls/tls_impl.h"

namespace rill::detail {
namespace {

void finish(tls_conn *t, int status) {
  if (t->timer)
    rill_timer_stop(t->timer);
  rill_conn *c = t->c;
  conn_set_io_hook(c, nullptr);
  tls_done_fn done = t->done;
  t->done = nullptr;
  if (status < 0 && tls_out_pending(t))
    tls_flush_out(t);  // the alert that says why, if the kernel takes it
  else if (t->ticket_held)
    tls_hold_ticket(t);  // with t->done cleared, the timer is the kick
  if (!conn_fd_closed(c))
    conn_update_io(c);
  if (done)
    done(t, status, t->done_arg);
}

void want(tls_conn *t, unsigned events) {
  t->hook.want = events;
  conn_update_io(t->c);
}

void step(tls_conn *t) {
  if (!t->done)
    return;
  int r = tls_flush_out(t);
  if (r < 0) {
    finish(t, r);
    return;
  }
  if (!t->handshaken) {
    tls_clear_stale_errors();  // for SSL_get_error below
    int ret = SSL_do_handshake(t->ssl);
    if (ret == 1) {
      t->handshaken = true;
    } else {
      int e = SSL_get_error(t->ssl, ret);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        want(t, tls_out_pending(t) ? unsigned{RILL_READ | RILL_WRITE} : unsigned{RILL_READ});
        return;
      }
      finish(t, tls_map_error(t, ret));
      return;
    }
  }
  if (tls_out_pending(t) && !t->ticket_held) {
    r = tls_flush_out(t);
    if (r < 0) {
      finish(t, r);
      return;
    }
    if (r == 0) {
      want(t, RILL_WRITE);
      return;
    }
  }
  finish(t, 0);
}

void on_io(rill_conn *, unsigned, void *arg) { step(static_cast<tls_conn *>(arg)); }

// Whether the certificate's subject CN is `host` (Go's legacy-CN hint).
bool common_name_is(X509 *cert, const char *host) {
  char cn[256];
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  return n > 0 && strcasecmp(cn, host) == 0;
}

// A name mismatch worded as Go's x509.HostnameError: the certificate's IP
// SANs when an address was dialed, else its DNS SANs ("x509: certificate
// is valid for a, b, not c").
void note_mismatch(tls_conn *t, X509 *cert) {
  char *out = t->verify_text;
  size_t size = sizeof t->verify_text;
  const char *host = t->name ? t->name : "";
  unsigned char addr[16];
  bool want_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
  auto *names = static_cast<GENERAL_NAMES *>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!names && common_name_is(cert, host)) {
    std::snprintf(out, size, "x509: certificate relies on legacy Common Name field, use SANs instead");
    return;
  }
  int n = std::snprintf(out, size, "x509: certificate is valid for ");
  size_t used = n > 0 ? static_cast<size_t>(n) : 0;
  int listed = 0;
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
    char text[INET6_ADDRSTRLEN] = "";
    if (g->type == GEN_DNS && !want_ip) {
      const ASN1_STRING *s = g->d.dNSName;
      std::snprintf(text, sizeof text, "%.*s", ASN1_STRING_length(s),
                    reinterpret_cast<const char *>(ASN1_STRING_get0_data(s)));
    } else if (g->type == GEN_IPADD && want_ip) {
      const ASN1_STRING *s = g->d.iPAddress;
      int family = ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6;
      inet_ntop(family, ASN1_STRING_get0_data(s), text, sizeof text);
    } else {
      continue;
    }
    n = std::snprintf(out + used, size - used, "%s%s", listed++ ? ", " : "", text);
    if (n > 0 && used + static_cast<size_t>(n) < size)
      used += static_cast<size_t>(n);
  }
  GENERAL_NAMES_free(names);
  if (listed)
    std::snprintf(out + used, size - used, ", not %s", host);
  else if (want_ip)
    std::snprintf(out, size, "x509: cannot validate certificate for %s because it doesn't contain any IP SANs",
                  host);
  else
    std::snprintf(out, size, "x509: certificate is not valid for any names, but wanted to match %s", host);
}

int on_verify(int ok, X509_STORE_CTX *store) {
  if (ok)
    return ok;
  auto *ssl = static_cast<SSL *>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto *t = ssl ? static_cast<tls_conn *>(SSL_get_ex_data(ssl, ssl_ex_index())) : nullptr;
  int err = X509_STORE_CTX_get_error(store);
  if (t && !t->verify_text[0] &&
      (err == X509_V_ERR_HOSTNAME_MISMATCH || err == X509_V_ERR_IP_ADDRESS_MISMATCH))
    note_mismatch(t, X509_STORE_CTX_get0_cert(store));  // the leaf
  return ok;
}

bool is_ip(const char *name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

int setup_client(tls_conn *t, rill_tls_config *cfg, const char *name) {
  SSL *ssl = t->ssl;
  SSL_set_connect_state(ssl);
  if (cfg->server_name)
    name = cfg->server_name;
  if (name && *name) {
    t->name = tls_strdup(name);
    if (!t->name)
      return RILL_ENOMEM;
    if (is_ip(name)) {
      if (!cfg->insecure && !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name))
        return RILL_ENOMEM;
    } else {
      // SNI carries names only, never addresses (RFC 6066, 3).
      if (!SSL_set_tlsext_host_name(ssl, name))
        return RILL_ENOMEM;
      if (!cfg->insecure && !SSL_set1_host(ssl, name))
        return RILL_ENOMEM;
    }
  }
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  SSL_set_verify(ssl, cfg->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, on_verify);
  session_attach(cfg, ssl, t->name ? t->name : "");
  return 0;
}

// OpenSSL refuses a renegotiation (SSL_OP_NO_RENEGOTIATION) with a
// no_renegotiation warning and carries on; Go's crypto/tls fails the
// connection (its client after that same warning), and so does rill: the
// read path then reports RILL_ETLS_RENEGOTIATION.
void on_info(const SSL *ssl, int where, int ret) {
  if ((where & SSL_CB_WRITE_ALERT) && (ret & 0xff) == SSL_AD_NO_RENEGOTIATION) {
    auto *t = static_cast<tls_conn *>(SSL_get_ex_data(ssl, ssl_ex_index()));
    if (t)
      t->refused_renegotiation = true;
  }
}

}  // namespace

int tls_handshake_start(rill_conn *c, rill_tls_config *cfg, bool server, const char *name,
                        uint64_t deadline, tls_done_fn done, void *arg) {
  int err = config_prepare(cfg);
  if (err)
    return err;
  BIO_METHOD *method = tls_bio_method();
  conn_rare *rare = conn_rare_get(c);
  tls_conn *t = make<tls_conn>();
  if (!method || !rare || !t) {
    destroy(t);
    return RILL_ENOMEM;
  }
  t->c = c;
  t->server = server;
  t->config = cfg;
  rill_tls_config_ref(cfg);
  t->done = done;
  t->done_arg = arg;
  t->ssl = SSL_new(cfg->ctx);
  BIO *bio = t->ssl ? BIO_new(method) : nullptr;
  if (!bio || !SSL_set_ex_data(t->ssl, ssl_ex_index(), t)) {
    BIO_free(bio);
    tls_conn_free(t);
    return RILL_ENOMEM;
  }
  BIO_set_data(bio, t);
  BIO_set_init(bio, 1);
  SSL_set_bio(t->ssl, bio, bio);
  SSL_set_read_ahead(t->ssl, 1);  // conn.cpp: one recv() per socket wake-up
  SSL_set_info_callback(t->ssl, on_info);
  if (server)
    SSL_set_accept_state(t->ssl);
  else if ((err = setup_client(t, cfg, name)) < 0) {
    tls_conn_free(t);
    return err;
  }
  if (deadline) {
    err = tls_timer_make(t);
    if (err < 0) {
      tls_conn_free(t);
      return err;
    }
    uint64_t now = monotonic_ns();
    rill_timer_start(t->timer, deadline > now ? deadline - now : 0, 0);
  }
  // Records are read by the transport from the socket itself: no io_uring
  // receive (nothing was read yet, so nothing waits in one).
  conn_uring_detach(c);
  conn_set_transport(c, &tls_transport, t);
  t->hook = conn_io_hook{on_io, t, server ? RILL_READ : RILL_WRITE};
  conn_set_io_hook(c, &t->hook);
  conn_update_io(c);
  return 0;
}

void tls_handshake_expired(tls_conn *t) {
  conn_held hold(t->c);
  if (t->done)
    finish(t, RILL_ETIMEOUT);
}

void tls_handshake_abandon(tls_conn *t) {
  if (t->timer)
    rill_timer_stop(t->timer);
  t->done = nullptr;
  if (t->c->rare)
    conn_set_io_hook(t->c, nullptr);
}

}  // namespace rill::detail
