// What a TLS connection negotiated: version, ALPN, resumption, the peer's
// certificate, the server name.
#include <openssl/x509.h>
#include <cstdio>
#include <cstring>

#include "tls/tls_impl.h"

using namespace rill::detail;

namespace {

int copy_out(const char *data, size_t len, char *buf, size_t size) {
  if (!buf || len >= size)
    return RILL_EINVAL;
  std::memcpy(buf, data, len);
  buf[len] = '\0';
  return static_cast<int>(len);
}

}  // namespace

extern "C" {

int rill_tls_conn_version(const rill_conn *conn) {
  tls_conn *t = tls_of(conn);
  return t ? SSL_version(t->ssl) : RILL_EINVAL;
}

int rill_tls_conn_alpn(const rill_conn *conn, char *buf, size_t size) {
  tls_conn *t = tls_of(conn);
  if (!t)
    return RILL_EINVAL;
  const unsigned char *p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(t->ssl, &p, &len);
  return copy_out(reinterpret_cast<const char *>(p), p ? len : 0, buf, size);
}

int rill_tls_conn_resumed(const rill_conn *conn) {
  tls_conn *t = tls_of(conn);
  return t ? SSL_session_reused(t->ssl) : RILL_EINVAL;
}

int rill_tls_conn_peer_subject(const rill_conn *conn, char *buf, size_t size) {
  tls_conn *t = tls_of(conn);
  if (!t)
    return RILL_EINVAL;
  X509 *peer = SSL_get0_peer_certificate(t->ssl);
  if (!peer)
    return copy_out("", 0, buf, size);
  BIO *mem = BIO_new(BIO_s_mem());
  if (!mem)
    return RILL_ENOMEM;
  X509_NAME_print_ex(mem, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
  char *text = nullptr;
  long len = BIO_get_mem_data(mem, &text);
  int ret = copy_out(text ? text : "", len > 0 ? static_cast<size_t>(len) : 0, buf, size);
  BIO_free(mem);
  return ret;
}

int rill_tls_conn_server_name(const rill_conn *conn, char *buf, size_t size) {
  tls_conn *t = tls_of(conn);
  if (!t)
    return RILL_EINVAL;
  const char *name = t->name ? t->name : "";
  return copy_out(name, std::strlen(name), buf, size);
}

}  // extern "C"
