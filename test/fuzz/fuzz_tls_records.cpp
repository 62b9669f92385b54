// Fuzz target: what a client sends a rill TLS server connection after a
// real TLS 1.3 handshake. An OpenSSL client in the target finishes the
// handshake with rill_tls_listen() on 127.0.0.1 (resuming the previous
// input's session, which keeps the exec rate up), then plays the input as
// a list of operations on the established connection:
//
//   op  arg  len  payload...        (op % 8; a payload is cut to what is left)
//   0   raw bytes onto the socket
//   1   a valid application-data record of the payload (SSL_write)
//   2   a forged record: type payload[0], length payload[1..2], then the rest
//   3   a valid record of the payload with one byte (arg % size) flipped
//   4   a valid record of the payload cut to its first arg % size bytes
//   5   a plaintext alert record (level arg % 3, description payload[0])
//   6   close_notify (SSL_shutdown)
//   7   a KeyUpdate (asking for one back when arg is odd)
//
// then half-closes. The server echoes what it reads and closes when its
// read ends. Checked for every input, beside the sanitizers' memory
// errors and leaks: the server connection ends by itself, within a bound
// (no hang); what it read is a prefix of the valid plaintext sent, and
// holds at least all of it sent before the first damaged byte or
// close_notify (nothing lost, nothing forged); the listener keeps
// accepting.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "rill.h"
#include "tls_fuzz_cert.h"

namespace {

rill_base *g_base;
rill_tls_listener *g_listener;
sockaddr_in g_addr;
SSL_CTX *g_client;
SSL_SESSION *g_session;  // the last ticket: the next input resumes it

// The server's one connection per input.
int g_accepted, g_open;
std::string g_got;  // plaintext the server read

size_t server_read(rill_conn *conn, const char *data, size_t len, int status, void *) {
  if (status) {
    rill_conn_close(conn);
    return 0;
  }
  g_got.append(data, len);
  if (rill_conn_write(conn, data, len) != 0)
    rill_conn_close(conn);
  return len;
}

void server_close(rill_conn *, void *) { g_open--; }

const rill_conn_events server_events = {.on_read = server_read, .on_close = server_close};

void on_accept(rill_tls_listener *, rill_conn *conn, int status, void *) {
  if (status)
    return;
  g_accepted++;
  g_open++;
  if (rill_conn_start(conn, &server_events, nullptr) != 0)
    abort();
}

int on_new_session(SSL *, SSL_SESSION *session) {
  SSL_SESSION_free(g_session);
  g_session = session;
  return 1;  // kept
}

// One input's client: the socket, and its SSL writing into `wbio` so that
// records can be damaged before they go out.
struct client {
  int fd = -1;
  SSL *ssl = nullptr;
  BIO *wbio = nullptr;
  bool dead = false;  // the server ended the connection: nothing more goes out
};

void turn(int fd, short events) {
  if (rill_base_run(g_base, RILL_RUN_NOWAIT) < 0)
    abort();
  pollfd p[1] = {{fd, events, 0}};
  poll(p, 1, 1);
}

void send_raw(client *c, const unsigned char *data, size_t len) {
  while (len && !c->dead) {
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      len -= static_cast<size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      turn(c->fd, POLLOUT);
    } else {
      c->dead = true;  // reset by a server that gave up: expected
    }
  }
}

// What OpenSSL wrote since the last call.
std::string take_out(client *c) {
  char *p = nullptr;
  long n = BIO_get_mem_data(c->wbio, &p);
  std::string out(p, n > 0 ? static_cast<size_t>(n) : 0);
  (void)BIO_reset(c->wbio);
  return out;
}

void flush(client *c) {
  std::string out = take_out(c);
  send_raw(c, reinterpret_cast<const unsigned char *>(out.data()), out.size());
}

// Monotonic ms, for the hang guards.
uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

bool handshake(client *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0 || connect(c->fd, reinterpret_cast<sockaddr *>(&g_addr), sizeof g_addr) != 0)
    abort();
  fcntl(c->fd, F_SETFL, O_NONBLOCK);
  c->ssl = SSL_new(g_client);
  BIO *rbio = BIO_new_socket(c->fd, BIO_NOCLOSE);
  c->wbio = BIO_new(BIO_s_mem());
  if (!c->ssl || !rbio || !c->wbio)
    abort();
  SSL_set_bio(c->ssl, rbio, c->wbio);
  SSL_set_connect_state(c->ssl);
  if (g_session)
    SSL_set_session(c->ssl, g_session);
  int accepted = g_accepted;
  uint64_t end = now_ms() + 10000;
  for (;;) {
    int r = SSL_do_handshake(c->ssl);
    flush(c);
    if (r == 1)
      break;
    int e = SSL_get_error(c->ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      fprintf(stderr, "handshake: SSL error %d, errno %d\n", e, errno);
      ERR_print_errors_fp(stderr);
      abort();  // rill's server refused a sound client
    }
    if (now_ms() > end)
      abort();  // the handshake hung
    turn(c->fd, POLLIN);
  }
  // The server's handshake is done once it read our Finished: from then
  // on everything goes to the connection, not to the handshake.
  while (g_accepted == accepted) {
    if (now_ms() > end)
      abort();
    turn(c->fd, POLLIN);
  }
  return true;
}

// The record SSL_write makes of `len` bytes; empty for none (OpenSSL
// makes no record of 0 bytes) or once the client said goodbye.
std::string seal(client *c, const unsigned char *data, size_t len) {
  size_t written = 0;
  if (!len || SSL_write_ex(c->ssl, data, len, &written) != 1) {
    ERR_clear_error();  // after our close_notify: nothing more to seal
    return std::string();
  }
  return take_out(c);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  static char dir[] = "/tmp/rill_fuzz_tls_records_XXXXXX";
  char cert[128], key[128];
  rill_tls_config *cfg = nullptr;
  if (!mkdtemp(dir) || !tls_fuzz_make_cert(dir, cert, key, sizeof cert) ||
      rill_base_new(nullptr, &g_base) || rill_tls_config_new(RILL_TLS_SERVER, &cfg) ||
      rill_tls_config_set_cert_key_files(cfg, cert, key) ||
      rill_tls_config_set_min_version(cfg, RILL_TLS_VERSION_13) ||
      rill_tls_listen(g_base, "tcp4", "127.0.0.1:0", nullptr, cfg, on_accept, nullptr, &g_listener))
    abort();
  rill_tls_config_unref(cfg);
  unlink(cert);
  unlink(key);
  rmdir(dir);
  g_addr.sin_family = AF_INET;
  g_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  g_addr.sin_port = htons(static_cast<uint16_t>(rill_listener_port(rill_tls_listener_listener(g_listener))));
  g_client = SSL_CTX_new(TLS_client_method());
  if (!g_client)
    abort();
  SSL_CTX_set_min_proto_version(g_client, TLS1_3_VERSION);
  SSL_CTX_set_verify(g_client, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_session_cache_mode(g_client, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(g_client, on_new_session);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  client c;
  handshake(&c);
  g_got.clear();
  std::string sent;        // every valid plaintext byte, in order
  size_t must_arrive = 0;  // how much of it went before the first damage
  bool damaged = false;
  for (size_t i = 0; i + 3 <= size && !c.dead;) {
    unsigned op = data[i] % 8, arg = data[i + 1];
    size_t len = data[i + 2];
    i += 3;
    if (len > size - i)
      len = size - i;
    const unsigned char *p = data + i;
    i += len;
    bool damage = false;
    switch (op) {
      case 0:
        send_raw(&c, p, len);
        damage = len > 0;
        break;
      case 1: {
        std::string rec = seal(&c, p, len);
        send_raw(&c, reinterpret_cast<const unsigned char *>(rec.data()), rec.size());
        if (!rec.empty())
          sent.append(reinterpret_cast<const char *>(p), len);
        break;
      }
      case 2: {
        auto at = [&](size_t k, unsigned char dflt) { return len > k ? p[k] : dflt; };
        unsigned char hdr[5] = {at(0, 0x17), 0x03, 0x03, at(1, 0), at(2, 0)};
        send_raw(&c, hdr, sizeof hdr);
        if (len > 3)
          send_raw(&c, p + 3, len - 3);
        damage = true;
        break;
      }
      case 3:
      case 4: {
        std::string rec = seal(&c, p, len);
        if (rec.empty())
          break;
        size_t at = arg % rec.size();
        if (op == 3)
          rec[at] = static_cast<char>(rec[at] ^ (1 + arg % 255));
        else
          rec.resize(at);
        send_raw(&c, reinterpret_cast<const unsigned char *>(rec.data()), rec.size());
        damage = true;  // its sequence number is spent either way
        break;
      }
      case 5: {
        unsigned char alert[7] = {0x15, 0x03, 0x03, 0x00, 0x02, static_cast<unsigned char>(arg % 3),
                                  static_cast<unsigned char>(len > 0 ? p[0] : 0)};
        send_raw(&c, alert, sizeof alert);
        damage = true;
        break;
      }
      case 6:
        SSL_shutdown(c.ssl);
        flush(&c);
        damage = true;  // not damage, but nothing after it counts
        break;
      case 7:
        if (SSL_key_update(c.ssl, arg & 1 ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) == 1)
          SSL_do_handshake(c.ssl);
        flush(&c);
        break;
    }
    if (damage && !damaged) {
      damaged = true;
      must_arrive = sent.size();
    }
  }
  if (!damaged)
    must_arrive = sent.size();
  shutdown(c.fd, SHUT_WR);
  // Until the server ended the connection (close_notify or an alert, then
  // EOF or a reset), reading its echo meanwhile, which also brings the
  // ticket the next input resumes with.
  uint64_t end = now_ms() + 10000;
  bool ssl_ok = true;
  for (;;) {
    char buf[4096];
    ssize_t n;
    if (ssl_ok) {
      size_t got = 0;
      int r = SSL_read_ex(c.ssl, buf, sizeof buf, &got);
      int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c.ssl, r);
      if (e == SSL_ERROR_NONE || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        n = r == 1 ? static_cast<ssize_t>(got) : -1;
        errno = EAGAIN;
      } else {
        ssl_ok = false;  // its alert or end: what is left is read raw
        ERR_clear_error();
        n = -1;
        errno = EAGAIN;
      }
    } else {
      n = read(c.fd, buf, sizeof buf);
    }
    if (n == 0 || (n < 0 && errno != EAGAIN))
      break;
    if (now_ms() > end)
      abort();  // the server never ended the connection: a hang
    if (n < 0)
      turn(c.fd, POLLIN);
  }
  while (g_open > 0) {
    if (now_ms() > end)
      abort();  // the server's connection never closed
    turn(c.fd, POLLIN);
  }
  SSL_free(c.ssl);
  close(c.fd);
  ERR_clear_error();
  if (g_got.size() < must_arrive || g_got.size() > sent.size() ||
      memcmp(g_got.data(), sent.data(), g_got.size()) != 0) {
    fprintf(stderr, "server read %zu bytes; sent %zu valid, %zu before any damage\n", g_got.size(),
            sent.size(), must_arrive);
    abort();
  }
  return 0;
}
