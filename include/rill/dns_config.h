/** @file
 * rill — resolver settings, shared by the base's configuration and by
 * per-request options (rill/dns.h). */
#ifndef RILL_DNS_CONFIG_H
#define RILL_DNS_CONFIG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  RILL_LOOKUP_HOSTS_DNS = 0, /**< the hosts file, then DNS (default) */
  RILL_LOOKUP_DNS = 1,       /**< DNS only */
  RILL_LOOKUP_HOSTS = 2      /**< the hosts file only */
};

/** Resolver settings. Zero-initialise; zero means the system's setting
 * (/etc/resolv.conf, /etc/hosts). */
typedef struct rill_dns_config {
  /** Comma-separated servers with optional ports: "127.0.0.1:5353,[::1]:53".
   * NULL: the servers of /etc/resolv.conf. */
  const char *servers;
  /** The hosts file; NULL: /etc/hosts. */
  const char *hosts_file;
  int lookup;            /**< RILL_LOOKUP_* */
  uint64_t timeout;      /**< per try in ns, rounded up to whole ms; 0:
                            resolv.conf's (5 s by default) */
  unsigned tries;        /**< 0: resolv.conf's (2 by default) */
} rill_dns_config;

#ifdef __cplusplus
}
#endif

#endif /* RILL_DNS_CONFIG_H */
