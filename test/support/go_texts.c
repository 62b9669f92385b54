/* Go's error texts beside rill's: the pinned table and the runner of
 * test/go_texts/go_texts.go (see go_texts.h). */
#define _GNU_SOURCE
#include "go_texts.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Each line: the situation, and Go's err.Error() for it, as go_texts.go
 * printed it with Go 1.19 on Linux. */
const go_text go_texts_pinned[] = {
    /* Malformed addresses: net.Dial("tcp", "1.2.3.4") ... */
    {"addr_noport", "dial tcp: address 1.2.3.4: missing port in address"},
    {"addr_colons", "dial tcp: address ::1:80: too many colons in address"},
    {"addr_nobracket", "dial tcp: address [::1:80: missing ']' in address"},
    {"addr_openbracket", "dial tcp: address a[b:80: unexpected '[' in address"},
    {"addr_closebracket", "dial tcp: address a]b:80: unexpected ']' in address"},
    {"addr_port", "dial tcp: address 99999: invalid port"},
    /* Go looks a port that is not a number up in /etc/services; rill
     * knows no service names, and every one is "unknown port". */
    {"addr_service", "dial tcp: address tcp/nosuchservice: unknown port"},
    {"addr_missing", "dial tcp: missing address"},
    {"addr_family", "dial tcp4: address ::1: no suitable address found"},
    {"unknown_network", "dial tcp7: unknown network tcp7"},
    {"listen_noport", "listen tcp: address 1.2.3.4: missing port in address"},
    {"listen_port", "listen tcp: address -1: invalid port"},
    {"listen_unknown_network", "listen tcp7: unknown network tcp7"},
    /* Dials that fail; G30: ":port" dials this host and shows ":port". */
    {"dial_refused", "dial tcp {closed}: connect: connection refused"},
    {"dial_local_system", "dial tcp :{closedport}: connect: connection refused"},
    /* A listener and a connection. */
    {"listen_in_use", "listen tcp {listener}: bind: address already in use"},
    {"read_timeout", "read tcp {local}->{listener}: i/o timeout"},
    {"read_eof", "EOF"},
    {"read_closed", "read tcp {local}->{listener}: use of closed network connection"},
    {"write_closed", "write tcp {local}->{listener}: use of closed network connection"},
    {"close_closed", "close tcp {local}->{listener}: use of closed network connection"},
    /* Go's setters name the connection two ways. */
    {"set_no_delay_closed", "set tcp {local}->{listener}: use of closed network connection"},
    {"set_keep_alive_closed", "set tcp {local}->{listener}: use of closed network connection"},
    {"set_linger_closed", "set tcp {local}->{listener}: use of closed network connection"},
    {"set_read_buffer_closed", "set tcp {local}: use of closed network connection"},
    {"set_write_buffer_closed", "set tcp {local}: use of closed network connection"},
    {"set_deadline_closed", "set tcp {local}: use of closed network connection"},
    {"accept_closed", "accept tcp {listener}: use of closed network connection"},
    {"listener_close_closed", "close tcp {listener}: use of closed network connection"},
    /* Unix sockets; an unnamed client shows as "@". */
    {"unix_dial_missing", "dial unix {dir}/missing.sock: connect: no such file or directory"},
    {"unix_listen_in_use", "listen unix {dir}/s.sock: bind: address already in use"},
    {"unix_read_timeout_client", "read unix @->{dir}/s.sock: i/o timeout"},
    {"unix_read_timeout_server", "read unix {dir}/s.sock->@: i/o timeout"},
    {"unix_accept_closed", "accept unix {dir}/s.sock: use of closed network connection"},
    /* DNS, through the fake server: NXDOMAIN, REFUSED and SERVFAIL. */
    {"dns_nxdomain", "lookup nx.test on {dns}: no such host"},
    {"dns_refused", "lookup refused.test on {dns}: server misbehaving"},
    {"dns_servfail", "lookup servfail.test on {dns}: server misbehaving"},
    {"dial_nxdomain", "dial tcp: lookup nx.test on {dns}: no such host"},
    /* The dial's own timeout ends the lookup: no server named. */
    {"dial_dns_timeout", "dial tcp: lookup drop.test: i/o timeout"},
    /* A server nobody serves. Go: "lookup nx.test on 127.0.0.1:Q: read udp
     * 127.0.0.1:40000->127.0.0.1:Q: read: connection refused": the local
     * address of Go's socket is left out (go_texts.go drops it), as rill's
     * resolver cannot know c-ares's. */
    {"dns_unreachable", "lookup nx.test on {deaddns}: read udp {deaddns}: read: connection refused"},
    /* Pinned only: Go's resolver waits 5 s twice per server before it says
     * so (seen: "lookup nx.test on 10.255.255.53:53: read udp
     * 127.0.0.1:52583->127.0.0.1:52357: i/o timeout", after 20 s). */
    {"dns_timeout", "lookup drop.test on {dns}: read udp {dns}: i/o timeout"},
};
const size_t go_texts_pinned_count = sizeof go_texts_pinned / sizeof go_texts_pinned[0];

const char *go_texts_pinned_text(const char *key) {
  size_t i;
  for (i = 0; i < go_texts_pinned_count; i++)
    if (strcmp(go_texts_pinned[i].key, key) == 0)
      return go_texts_pinned[i].text;
  return NULL;
}

void go_texts_expand(const char *text, const char *const *vars, char *out, size_t size) {
  size_t used = 0;
  if (size == 0)
    return;
  while (*text && used + 1 < size) {
    const char *value = NULL;
    size_t name_len = 0;
    if (*text == '{') {
      const char *close = strchr(text, '}');
      size_t i;
      for (i = 0; close && vars && vars[i] && vars[i + 1]; i += 2)
        if (strlen(vars[i]) == (size_t)(close - text - 1) &&
            strncmp(vars[i], text + 1, (size_t)(close - text - 1)) == 0) {
          value = vars[i + 1];
          name_len = (size_t)(close - text + 1);
          break;
        }
    }
    if (value) {
      size_t n = strlen(value);
      if (n > size - 1 - used)
        n = size - 1 - used;
      memcpy(out + used, value, n);
      used += n;
      text += name_len;
    } else {
      out[used++] = *text++;
    }
  }
  out[used] = '\0';
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void parse_lines(char *data, go_output *out) {
  char *line = data;
  out->count = 0;
  while (line && *line && out->count < 64) {
    char *end = strchr(line, '\n');
    char *tab;
    if (end)
      *end = '\0';
    tab = strchr(line, '\t');
    if (tab && (size_t)(tab - line) < sizeof out->keys[0] && strlen(tab + 1) < sizeof out->texts[0]) {
      memcpy(out->keys[out->count], line, (size_t)(tab - line));
      out->keys[out->count][tab - line] = '\0';
      memcpy(out->texts[out->count], tab + 1, strlen(tab + 1) + 1);
      out->count++;
    }
    line = end ? end + 1 : NULL;
  }
}

int go_texts_run(const char *const *args, go_output *out, int timeout_ms) {
#ifndef GO_TEXTS_BIN
  (void)args;
  (void)out;
  (void)timeout_ms;
  return 0;
#else
  const char *bin = GO_TEXTS_BIN;
  char *argv[16];
  char data[32768];
  size_t used = 0, n = 0;
  int fds[2], status = 0, done = 0;
  long long deadline = now_ms() + timeout_ms;
  pid_t pid;
  if (access(bin, X_OK) != 0)
    return 0;
  argv[n++] = (char *)bin;
  while (args[n - 1] && n < 15) {
    argv[n] = (char *)args[n - 1];
    n++;
  }
  argv[n] = NULL;
  if (pipe2(fds, O_CLOEXEC) != 0)
    return -1;
  pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    dup2(fds[1], 1);
    execv(bin, argv);
    _exit(127);
  }
  close(fds[1]);
  while (!done) {
    struct pollfd p = {fds[0], POLLIN, 0};
    long long left = deadline - now_ms();
    ssize_t got;
    if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
      if (errno == EINTR && left > 0)
        continue;
      fprintf(stderr, "go_texts: no end after %d ms, killed\n", timeout_ms);
      kill(pid, SIGKILL);
      break;
    }
    got = read(fds[0], data + used, sizeof data - 1 - used);
    if (got > 0)
      used += (size_t)got;
    else if (got == 0 || (errno != EINTR && errno != EAGAIN) || used + 1 >= sizeof data)
      done = 1;
  }
  close(fds[0]);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  data[used] = '\0';
  parse_lines(data, out);
  if (!done || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "go_texts: %s failed (status 0x%x)\n", bin, status);
    return -1;
  }
  return 1;
#endif
}

const char *go_output_text(const go_output *out, const char *key) {
  size_t i;
  for (i = 0; i < out->count; i++)
    if (strcmp(out->keys[i], key) == 0)
      return out->texts[i];
  return NULL;
}

void go_checked_add(go_checked *checked, const char *key) {
  if (checked->count < sizeof checked->keys / sizeof checked->keys[0])
    snprintf(checked->keys[checked->count++], sizeof checked->keys[0], "%s", key);
}

int go_texts_verify(const go_checked *checked, int require_all, const go_output *go, char *why,
                    size_t size) {
  size_t i, j;
  for (i = 0; i < go_texts_pinned_count && require_all; i++) {
    int seen = 0;
    for (j = 0; j < checked->count; j++)
      seen |= strcmp(checked->keys[j], go_texts_pinned[i].key) == 0;
    if (!seen) {
      snprintf(why, size, "no rill text checked against Go's %s", go_texts_pinned[i].key);
      return -1;
    }
  }
  for (i = 0; i < go_texts_pinned_count && go; i++) {
    const char *text = go_output_text(go, go_texts_pinned[i].key);
    if (strcmp(go_texts_pinned[i].key, "dns_timeout") == 0)
      continue; /* pinned only: Go takes 20 s to say it */
    if (!text) {
      snprintf(why, size, "Go printed nothing for %s", go_texts_pinned[i].key);
      return -1;
    }
    if (strcmp(text, go_texts_pinned[i].text) != 0) {
      snprintf(why, size, "%s: Go now prints\n  %s\nnot the pinned\n  %s", go_texts_pinned[i].key,
               text, go_texts_pinned[i].text);
      return -1;
    }
  }
  return 0;
}
