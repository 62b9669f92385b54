/* What the TLS tests whose peer is a blocking OpenSSL client on a thread of
 * its own share (test_tls_close, test_tls_regressions,
 * test_facade_tls_close; test_tls_perf_paths and test_tls_tickets, whose
 * client drives memory BIOs): flags between the loop's thread and the peer's,
 * the peer's socket and context, and a peer that reads a whole stream when
 * told to and says how it ended. Every wait is bounded by SP_GUARD_MS. */
#ifndef RILL_TEST_SSL_THREAD_PEER_H
#define RILL_TEST_SSL_THREAD_PEER_H

#include <stddef.h>

#include <openssl/ssl.h>

#define SP_GUARD_MS 20000 /* any one wait; the steps take milliseconds */

/* A flag one thread sets and the other reads. */
int sp_get(const int *p);
void sp_put(int *p, int v);
/* Waits until *p >= want: 0, or -1 after the guard. */
int sp_wait_for(const int *p, int want);

/* A blocking socket connected to 127.0.0.1:port, or to the Unix socket
 * `path` when that is set, with SO_RCVBUF `rcvbuf` (0: the default) and
 * the guard as its receive and send timeouts; -1 on failure. */
int sp_connect(int port, const char *path, int rcvbuf);
/* A client context that checks no certificate (the peer is the test's). */
SSL_CTX *sp_client_ctx(void);

/* For a client of OpenSSL memory BIOs, which chooses its segments: sends
 * all `out` holds in one send() (0, or -1), and puts one recv()'s bytes
 * into `in` (0, or -1 on an error or the peer's end). */
int sp_bio_flush(int fd, BIO *out);
int sp_bio_feed(int fd, BIO *in);

/* A peer that connects, finishes its handshake, waits for *go, then reads
 * until the TLS stream ends and the socket's end after it. With `hang_up`
 * it closes its socket at *go instead, reading nothing. */
typedef struct sp_reader {
  int port;          /* or `path`, a Unix socket */
  const char *path;
  int rcvbuf;
  const int *go;
  int hang_up;
  unsigned char *buf;
  size_t cap;
  /* What it saw. */
  int handshaken;
  size_t got;        /* plaintext read, into buf */
  int clean;         /* the stream ended with close_notify */
  int fin;           /* then the socket read its end (FIN), not a timeout */
  int done;          /* sp_put once it is over, whatever happened */
} sp_reader;

/* pthread_create's start routine; `arg` is an sp_reader. */
void *sp_read_stream(void *arg);

#endif
