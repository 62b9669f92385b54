// The fuzz targets' TLS server certificate: made in memory at start (no
// private key is ever committed) and written as PEM files for
// rill_tls_config_set_cert_key_files().
#ifndef RILL_FUZZ_TLS_FUZZ_CERT_H
#define RILL_FUZZ_TLS_FUZZ_CERT_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>

// A self-signed P-256 certificate and its key, as PEM files in `dir`.
inline bool tls_fuzz_make_cert(const char *dir, char *cert, char *key, size_t size) {
  snprintf(cert, size, "%s/cert.pem", dir);
  snprintf(key, size, "%s/key.pem", dir);
  EVP_PKEY *pkey = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  if (!pkey || !x)
    return false;
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, pkey);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char *>("fuzz"),
                             -1, -1, 0);
  X509_set_issuer_name(x, name);
  bool ok = X509_sign(x, pkey, EVP_sha256()) > 0;
  FILE *c = fopen(cert, "w"), *k = fopen(key, "w");
  ok = ok && c && k && PEM_write_X509(c, x) && PEM_write_PrivateKey(k, pkey, nullptr, nullptr, 0,
                                                                     nullptr, nullptr);
  if (c)
    fclose(c);
  if (k)
    fclose(k);
  X509_free(x);
  EVP_PKEY_free(pkey);
  return ok;
}

#endif
