// Built without c-ares: names cannot be resolved, and say so.
#include "rill/dns.h"

extern "C" {

int rill_resolve(rill_base *, const char *, int, const rill_dns_config *, rill_resolve_cb, void *,
                 rill_dns_query **) {
  return RILL_ENEEDDNS;
}

int rill_dns_query_cancel(rill_dns_query *) { return RILL_EINVAL; }

int rill_dns_query_server(const rill_dns_query *, char *, size_t) { return RILL_EINVAL; }

const char *rill_dns_version(void) { return nullptr; }

}  // extern "C"
