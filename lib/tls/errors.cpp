// OpenSSL's failures as rill codes, worded as Go's crypto/tls words them
// (include/rill/error.h lists the codes, lib/core/error.cpp their texts).
// OpenSSL reports a failure three ways: the verification result of the
// peer's chain, an alert the peer sent (a reason code offset by 1000), or
// a reason of its own; the socket's errno and the BIO's end of stream tell
// a reset or a cut stream from the rest, and the first byte it read a
// plaintext client.
#include <openssl/err.h>
#include <openssl/x509.h>

#include "tls/tls_impl.h"

namespace rill::detail {
namespace {

int from_verify(long result) {
  switch (result) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return RILL_ETLS_UNKNOWN_AUTHORITY;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return RILL_ETLS_EXPIRED;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return RILL_ETLS_HOSTNAME;
    default:
      return RILL_ETLS_BAD_CERT;
  }
}

int from_alert(int alert) {
  switch (alert) {
    case 42:   // bad_certificate
    case 43:   // unsupported_certificate
    case 44:   // certificate_revoked
    case 45:   // certificate_expired
    case 46:   // certificate_unknown
    case 48:   // unknown_ca
    case 116:  // certificate_required
      return RILL_ETLS_REMOTE_BAD_CERT;
    case 70:  // protocol_version
      return RILL_ETLS_VERSION;
    case 100:  // no_renegotiation
      return RILL_ETLS_RENEGOTIATION;
    case 120:  // no_application_protocol
      return RILL_ETLS_NO_ALPN;
    default:  // handshake_failure and the rest
      return RILL_ETLS_HANDSHAKE;
  }
}

int from_reason(tls_conn *t, int reason) {
  if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256)
    return from_alert(reason - SSL_AD_REASON_OFFSET);
  switch (reason) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      return from_verify(SSL_get_verify_result(t->ssl));
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
      // Go's crypto/tls too: a stream that ends without close_notify may
      // have been cut by an attacker, between records or not.
      return RILL_ETLS_TRUNCATED;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      return RILL_ETLS_CERT_REQUIRED;
    case SSL_R_NO_APPLICATION_PROTOCOL:
      return RILL_ETLS_NO_ALPN;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
      return RILL_ETLS_VERSION;
    case SSL_R_NO_RENEGOTIATION:
    case SSL_R_UNSAFE_LEGACY_RENEGOTIATION_DISABLED:
      return RILL_ETLS_RENEGOTIATION;
    default:
      return RILL_ETLS_PROTOCOL;
  }
}

}  // namespace

int tls_map_error(tls_conn *t, int ssl_ret) {
  int err = 0;
  if (t->not_tls && !t->handshaken) {
    err = RILL_ETLS_NOT_TLS;
  } else if (unsigned long e = ERR_peek_error()) {
    err = ERR_GET_LIB(e) == ERR_LIB_SSL ? from_reason(t, ERR_GET_REASON(e)) : RILL_ETLS_PROTOCOL;
  } else if (t->sys_err) {
    err = -t->sys_err;
  } else if (t->eof) {
    err = RILL_ETLS_TRUNCATED;
  } else {
    err = ssl_ret == 0 ? RILL_ETLS_TRUNCATED : RILL_ETLS_PROTOCOL;
  }
  ERR_clear_error();
  return err;
}

}  // namespace rill::detail
