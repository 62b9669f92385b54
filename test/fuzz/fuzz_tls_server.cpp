// Fuzz target: what a hostile client sends to a TLS listener before and
// during its handshake: the input is written raw to a connection to
// rill_tls_listen() on 127.0.0.1, then the client half-closes.
//
// Checked for every input: the listener survives it (its next accept works
// the same); the server ends the connection (the client sees EOF or a
// reset) without the handshake timeout having to; no handshake succeeds
// (random bytes cannot finish one); and (by the sanitizers) no memory error
// or leak in the record framing, the plaintext detection, the alert
// mapping or the handshake's error paths.
//
// The certificate is made in memory at start (never committed) and written
// to a temporary directory for rill_tls_config_set_cert_key_files().
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "tls_fuzz_cert.h"

namespace {

rill_base *g_base;
rill_tls_listener *g_listener;
sockaddr_in g_addr;
int g_accepted, g_failed;

void on_accept(rill_tls_listener *, rill_conn *conn, int status, void *) {
  if (status == 0) {
    g_accepted++;
    rill_conn_abort(conn);
  }
}

void on_error(rill_tls_listener *, int, const char *text, void *) {
  if (!text || !*text)
    abort();  // a failure always has Go's words
  g_failed++;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  static char dir[] = "/tmp/rill_fuzz_tls_XXXXXX";
  char cert[128], key[128];
  rill_tls_config *cfg = nullptr;
  if (!mkdtemp(dir) || !tls_fuzz_make_cert(dir, cert, key, sizeof cert) || rill_base_new(nullptr, &g_base) ||
      rill_tls_config_new(RILL_TLS_SERVER, &cfg) ||
      rill_tls_config_set_cert_key_files(cfg, cert, key) ||
      rill_tls_config_set_handshake_timeout(cfg, 5 * RILL_SEC) ||
      rill_tls_listen(g_base, "tcp4", "127.0.0.1:0", nullptr, cfg, on_accept, nullptr, &g_listener) ||
      rill_tls_listener_set_error_hook(g_listener, on_error, nullptr))
    abort();
  rill_tls_config_unref(cfg);
  unlink(cert);
  unlink(key);
  rmdir(dir);
  g_addr.sin_family = AF_INET;
  g_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  g_addr.sin_port = htons(static_cast<uint16_t>(rill_listener_port(rill_tls_listener_listener(g_listener))));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr *>(&g_addr), sizeof g_addr) != 0)
    abort();
  // Loopback takes a fuzzer's input whole (libFuzzer's -max_len is 4 KiB
  // by default, far below the socket buffer).
  if (size && write(fd, data, size) != static_cast<ssize_t>(size))
    abort();
  shutdown(fd, SHUT_WR);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  int before = g_failed + g_accepted;
  // Until the server has ended the connection: the client then reads EOF
  // or a reset, after whatever alert the server sent.
  for (;;) {
    if (rill_base_run(g_base, RILL_RUN_NOWAIT) < 0)
      abort();
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN))
      break;
    if (n < 0) {
      pollfd p[1] = {{fd, POLLIN, 0}};
      poll(p, 1, 1);
    }
  }
  close(fd);
  // The server's report of it may come an iteration after the close.
  for (int i = 0; i < 1000 && g_failed + g_accepted == before; i++)
    rill_base_run(g_base, RILL_RUN_NOWAIT);
  if (g_accepted)
    abort();  // random bytes finished a handshake
  return 0;
}
