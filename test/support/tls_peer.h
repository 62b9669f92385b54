/* Helpers for the TLS tests: a throwaway CA and certificates made at test
 * time with the `openssl` command (no private key is ever committed), and
 * real OpenSSL peers (s_server, s_client) started on loopback. */
#ifndef RILL_TEST_TLS_PEER_H
#define RILL_TEST_TLS_PEER_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A temporary directory holding, all signed by ca.crt unless said:
 *   server.crt/.key   CN=localhost, SANs localhost and 127.0.0.1
 *   other.crt/.key    SAN other.test (for SNI selection)
 *   expired.crt       server.key's, expired yesterday
 *   client.crt/.key   CN=rill client (client certificates)
 *   rogue_ca.crt, rogue.crt/.key  a CA nobody trusts and its localhost
 *   server2.crt       server.key's, CN=renewed (certificate reload)
 *   example.crt/.key  SAN example.test (the README's TLS dial)
 * Returns 0, or -1 when the openssl command is missing or failed. */
int tp_certs_make(char *dir, size_t size);
/* Removes the directory. */
void tp_certs_remove(const char *dir);
/* A test program's certificates, as cmocka group setup and teardown:
 * tp_certs_setup makes them (failing the group when openssl cannot),
 * tp_cert(name) is the path of one. */
int tp_certs_setup(void **state);
int tp_certs_teardown(void **state);
const char *tp_cert(const char *name);
/* dir + "/" + name into a static buffer (one of four, rotating). */
const char *tp_path(const char *dir, const char *name);

/* Starts argv[0] (searched in PATH) with stdin from `in_file` (NULL:
 * /dev/null) and stdout+stderr to `out_file` (NULL: /dev/null). */
pid_t tp_spawn(char *const argv[], const char *in_file, const char *out_file);
/* Kills (SIGKILL) and reaps a process tp_spawn started. */
void tp_kill(pid_t pid);
/* Reaps it if it exited: its status, or -1 while it runs. */
int tp_exited(pid_t pid);
/* A TCP port on 127.0.0.1 nobody listens on now. */
int tp_free_port(void);
/* A TCP listener on 127.0.0.1 that accepts nothing by itself (connects
 * complete in the kernel, no byte is ever answered): its socket, its
 * address ("127.0.0.1:port") in `addr`; -1 on failure. */
int tp_silent_listener(char *addr, size_t size);
/* Waits until 127.0.0.1:port accepts (a plain connect, closed at once),
 * up to `timeout_ms`: 0, or -1. */
int tp_wait_port(int port, int timeout_ms);
/* The whole file into a malloc'd NUL-terminated buffer (NULL if missing). */
char *tp_read_file(const char *path);
/* Runs argv (tp_spawn, output to `out_path`) for at most `ms`, killing it
 * then: its exit status (-1 when killed, -2 when it wrote no file), and the
 * first line it printed, without a leading "error: ", into `line`. For a
 * peer that fails and says why (the Go peer's failed dials). */
int tp_run_for_error(char *const argv[], const char *out_path, unsigned ms, char *line,
                     size_t size);

#ifdef __cplusplus
}
#endif

#endif
