// Fuzz target: DNS answers, as hostile as a server (or an attacker who can
// spoof one) can make them, fed through the fake DNS server
// (test/support/fake_dns.h) in raw mode to rill_resolve().
//
// Input layout: byte 0 chooses the family asked for (AF_UNSPEC, AF_INET,
// AF_INET6), whether the server inserts the query's question after the
// header (so the answer passes c-ares's question check and reaches the
// record parser), and which name is asked; the rest is the response, header
// included, sent for every query (the query id patched in; a truncated
// answer brings the same bytes again over TCP).
//
// Checked for every input: rill_resolve() accepts the name; exactly one
// completion, from the loop, never inside rill_resolve(); its status is one
// the header documents; on success every address is a well-formed sockaddr
// of an allowed family, port 0, that formats and parses back to itself, and
// the canonical name is a string; rill_base_free() returns 0; and (by the
// sanitizers) no memory error or leak.
//
// Network rule: the base names the fake server on 127.0.0.1 and an empty
// hosts file, so nothing ever reaches the system's resolver. To keep each
// input fast the resolver gets one try and a short timeout, and a lookup
// still open once every query has had its answer and the loop has gone
// quiet is cancelled (which is also a completion to check).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_dns.h"
#include "rill.h"

namespace {

fake_dns *g_server;
char g_hosts[64] = "";

// Loop iterations without news after which an unanswered lookup is given
// up: the answers are in the socket already (see fake_dns_set_raw), so a
// few iterations are plenty; more only wait for a TCP retry.
constexpr int quiet_iterations = 64;
// c-ares's own limit, reached only when an answer was dropped.
constexpr unsigned dns_timeout_ms = 40;

const char *const names[] = {"fuzz.test.", "a.b.fuzz.test.", "x.", "fuzz.test"};

[[noreturn]] void fail(const char *what) {
  fprintf(stderr, "fuzz_dns_answer: %s\n", what);
  abort();
}

void check(bool ok, const char *what) {
  if (!ok)
    fail(what);
}

void remove_hosts() {
  if (g_hosts[0])
    unlink(g_hosts);
}

struct lookup {
  int family;
  int calls = 0;
  bool in_api = false;
};

bool documented_status(int status) {
  switch (status) {
    case 0:
    case RILL_EDNS_NOHOST:
    case RILL_EDNS_SERVFAIL:
    case RILL_EDNS_REFUSED:
    case RILL_EDNS_TIMEOUT:
    case RILL_ECANCELED:
    case RILL_ENOMEM:
      return true;
    default:
      return false;
  }
}

void check_address(const sockaddr_storage *ss, int family) {
  check(ss->ss_family == AF_INET || ss->ss_family == AF_INET6, "address of another family");
  check(family == AF_UNSPEC || ss->ss_family == family, "address of a family not asked for");
  socklen_t len;
  if (ss->ss_family == AF_INET) {
    len = sizeof(sockaddr_in);
    check(reinterpret_cast<const sockaddr_in *>(ss)->sin_port == 0, "port not 0");
  } else {
    len = sizeof(sockaddr_in6);
    check(reinterpret_cast<const sockaddr_in6 *>(ss)->sin6_port == 0, "port not 0");
  }
  char text[RILL_ADDRSTRLEN];
  int n = rill_addr_format(reinterpret_cast<const sockaddr *>(ss), len, text, sizeof text);
  check(n > 0 && static_cast<size_t>(n) == strlen(text), "address does not format");
  sockaddr_storage back;
  socklen_t back_len = 0;
  check(rill_addr_parse("tcp", text, &back, &back_len) == 0, "formatted address does not parse");
  check(back_len == len && back.ss_family == ss->ss_family, "address changes in a round trip");
  if (ss->ss_family == AF_INET)
    check(memcmp(&reinterpret_cast<sockaddr_in *>(&back)->sin_addr,
                 &reinterpret_cast<const sockaddr_in *>(ss)->sin_addr, 4) == 0,
          "IPv4 address changes in a round trip");
  else
    check(memcmp(&reinterpret_cast<sockaddr_in6 *>(&back)->sin6_addr,
                 &reinterpret_cast<const sockaddr_in6 *>(ss)->sin6_addr, 16) == 0,
          "IPv6 address changes in a round trip");
}

void on_resolved(rill_dns_query *, int status, const rill_dns_result *result, void *arg) {
  auto *l = static_cast<lookup *>(arg);
  check(!l->in_api, "completion inside rill_resolve()");
  check(++l->calls == 1, "more than one completion");
  if (getenv("RILL_FUZZ_VERBOSE"))
    fprintf(stderr, "fuzz_dns_answer: status %s, %zu addresses, canonical %s\n", rill_err_name(status),
            result ? result->count : 0, result && result->canonical_name ? result->canonical_name : "-");
  if (!documented_status(status)) {
    fprintf(stderr, "fuzz_dns_answer: status %d (%s)\n", status, rill_err_name(status));
    fail("undocumented status");
  }
  if (status != 0)
    return;
  check(result != nullptr && result->count > 0 && result->addrs != nullptr, "success without addresses");
  check(result->canonical_name != nullptr, "no canonical name");
  check(strnlen(result->canonical_name, 256) < 256, "canonical name too long");
  for (size_t i = 0; i < result->count; i++)
    check_address(&result->addrs[i], l->family);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  snprintf(g_hosts, sizeof g_hosts, "/tmp/rill-fuzz-hosts-XXXXXX");
  int fd = mkstemp(g_hosts);
  if (fd < 0)
    fail("cannot create the empty hosts file");
  close(fd);
  atexit(remove_hosts);
  if (fake_dns_start(&g_server) < 0)
    fail("cannot start the fake DNS server");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 4096)
    return -1;
  static const int families[] = {AF_UNSPEC, AF_INET, AF_INET6};
  int family = families[(data[0] & 3) % 3];
  int flags = (data[0] & 4) ? FAKE_DNS_RAW_ECHO_QUESTION : 0;
  const char *name = names[(data[0] >> 3) & 3];
  check(fake_dns_set_raw(g_server, data + 1, size - 1, flags) == 0, "fake_dns_set_raw");
  fake_dns_reset_counters(g_server);

  rill_base_config config{};
  config.dns.servers = fake_dns_server(g_server);
  config.dns.hosts_file = g_hosts;
  config.dns.timeout = dns_timeout_ms * RILL_MSEC;
  config.dns.tries = 1;
  rill_base *base = nullptr;
  check(rill_base_new(&config, &base) == 0, "rill_base_new");

  lookup l;
  l.family = family;
  rill_dns_query *query = nullptr;
  l.in_api = true;
  int rc = rill_resolve(base, name, family, nullptr, on_resolved, &l, &query);
  l.in_api = false;
  check(rc == 0, "rill_resolve refused the name");

  // Run until the lookup completes. Once every query has had its answer and
  // nothing has changed for a while, cancel instead of waiting for c-ares's
  // timeout.
  unsigned last_queries = 0, last_responses = 0;
  int quiet = 0;
  bool cancelled = false;
  for (long i = 0; l.calls == 0; i++) {
    check(i < 10000000, "the lookup never completes");
    rill_base_run(base, RILL_RUN_NOWAIT);
    unsigned queries = fake_dns_queries(g_server, FAKE_DNS_ALL);
    unsigned responses = fake_dns_responses(g_server);
    if (queries != last_queries || responses != last_responses || queries == 0 || responses < queries) {
      last_queries = queries;
      last_responses = responses;
      quiet = 0;
      sched_yield();  // the server's thread may have a query to answer
      continue;
    }
    if (++quiet >= quiet_iterations && !cancelled && l.calls == 0) {
      check(rill_dns_query_cancel(query) == 0, "rill_dns_query_cancel");
      cancelled = true;
    }
  }
  // A second completion would come from the loop or from the teardown.
  for (int i = 0; i < 4; i++)
    rill_base_run(base, RILL_RUN_NOWAIT);
  check(rill_base_free(base) == 0, "rill_base_free did not free the base");
  check(l.calls == 1, "more than one completion");
  return 0;
}
