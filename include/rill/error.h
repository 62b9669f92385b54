/** @file
 * rill — error codes.
 *
 * Every rill function that can fail returns 0 (or a non-negative value) on
 * success and a negative code on failure. Operating-system failures are the
 * negated errno value (-ECONNREFUSED, ...), as in libuv, so they compare equal
 * to the RILL_E* aliases below. rill's own conditions use a reserved range
 * below -10000 that no errno reaches; DNS failures have their own sub-range so
 * they can be told apart with RILL_IS_DNS_ERROR(). */
#ifndef RILL_ERROR_H
#define RILL_ERROR_H

#include <errno.h>

#include "rill/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Operating-system errors, as negative errno values. @{ */
#define RILL_EINVAL (-EINVAL)
#define RILL_ENOMEM (-ENOMEM)
#define RILL_EBADF (-EBADF)
#define RILL_EEXIST (-EEXIST)
#define RILL_EBUSY (-EBUSY)
#define RILL_EAGAIN (-EAGAIN)
#define RILL_ENOENT (-ENOENT)
#define RILL_ENOSYS (-ENOSYS)
#define RILL_EMFILE (-EMFILE)
#define RILL_ENFILE (-ENFILE)
#define RILL_EPIPE (-EPIPE)
#define RILL_ECONNREFUSED (-ECONNREFUSED)
#define RILL_ECONNRESET (-ECONNRESET)
#define RILL_ECONNABORTED (-ECONNABORTED)
#define RILL_ETIMEDOUT (-ETIMEDOUT) /**< the kernel's timeout, not a deadline */
#define RILL_EADDRINUSE (-EADDRINUSE)
#define RILL_EAFNOSUPPORT (-EAFNOSUPPORT)
/** @} */

/** rill's own conditions. @{ */
#define RILL_EOF (-10001)        /**< end of stream: the peer closed its side */
#define RILL_ECLOSED (-10002)    /**< use of a closed handle or connection */
#define RILL_ETIMEOUT (-10003)   /**< a deadline passed ("i/o timeout") */
#define RILL_ECANCELED (-10004)  /**< the operation was cancelled */
#define RILL_ENOTFIBER (-10005)  /**< a blocking call made outside a fiber */
#define RILL_ENEEDDNS (-10006)   /**< a host name given where only numbers work */
#define RILL_EBACKEND (-10007)   /**< no such backend, or not built in */
#define RILL_ENOTSUP (-10008)    /**< a feature rill was built without (TLS) */
/** @} */

/** DNS failures (-10100 ... -10199). @{ */
#define RILL_EDNS_NOHOST (-10101)   /**< no such host */
#define RILL_EDNS_SERVFAIL (-10102) /**< server misbehaving */
#define RILL_EDNS_REFUSED (-10103)  /**< the server refused the query; Go's
                                       "server misbehaving" */
#define RILL_EDNS_TIMEOUT (-10104)  /**< no answer in time: "i/o timeout" */
#define RILL_EDNS_BADNAME (-10105)  /**< not a valid host name */
#define RILL_EDNS_UNREACHABLE (-10106) /**< no server could be reached (the
                                          query was refused by the host,
                                          nothing listens): "connection
                                          refused", but a DNS error */

/** @} */

/** Whether `e` is one of the DNS failures above. */
#define RILL_IS_DNS_ERROR(e) ((e) <= -10100 && (e) > -10200)

/** Malformed addresses and networks (-10300 ... -10399), with Go's texts.
 * Formatted with the address (rill_format_net_error), they read as Go's
 * "dial tcp: address 1.2.3.4: missing port in address". @{ */
#define RILL_EADDR_NOPORT (-10301)      /**< "missing port in address" ("1.2.3.4") */
#define RILL_EADDR_COLONS (-10302)      /**< "too many colons in address" ("::1:80") */
#define RILL_EADDR_NOBRACKET (-10303)   /**< "missing ']' in address" ("[::1:80") */
#define RILL_EADDR_OPENBRACKET (-10304) /**< "unexpected '[' in address" ("a[b:80") */
#define RILL_EADDR_CLOSEBRACKET (-10305) /**< "unexpected ']' in address" ("a]b:80") */
#define RILL_EADDR_PORT (-10306)        /**< "invalid port" (above 65535, signed) */
#define RILL_EADDR_SERVICE (-10307)     /**< "unknown port" (not a number: rill
                                           knows no service names) */
#define RILL_EADDR_MISSING (-10308)     /**< "missing address" (dialing "") */
#define RILL_EADDR_FAMILY (-10309)      /**< "no suitable address found" (tcp4
                                           with an IPv6 address, ...) */
#define RILL_EUNKNOWN_NETWORK (-10310)  /**< "unknown network" ("tcp7") */

/** @} */

/** Whether `e` is one of the address errors above. */
#define RILL_IS_ADDR_ERROR(e) ((e) <= -10300 && (e) > -10400)

/** TLS failures (-10400 ... -10499), with Go's crypto/tls texts. @{ */
#define RILL_ETLS_UNKNOWN_AUTHORITY (-10401) /**< "x509: certificate signed by unknown authority" */
#define RILL_ETLS_HOSTNAME (-10402)  /**< "x509: certificate is not valid for this host"; a
                                        dialer's formatter names both:
                                        "x509: certificate is valid for X, not Y" */
#define RILL_ETLS_EXPIRED (-10403)   /**< "x509: certificate has expired or is not yet valid" */
#define RILL_ETLS_BAD_CERT (-10404)  /**< "x509: certificate verification failed" (any
                                        other reason the chain was refused) */
#define RILL_ETLS_HANDSHAKE (-10405) /**< "remote error: tls: handshake failure": the
                                        peer refused the handshake */
#define RILL_ETLS_NOT_TLS (-10406)   /**< "tls: first record does not look like a TLS
                                        handshake" (a plaintext peer) */
#define RILL_ETLS_RENEGOTIATION (-10407) /**< "tls: renegotiation is not supported" */
#define RILL_ETLS_TRUNCATED (-10408) /**< "unexpected EOF": the stream ended without
                                        close_notify (Go's io.ErrUnexpectedEOF) */
#define RILL_ETLS_CERT_REQUIRED (-10409) /**< "tls: client didn't provide a certificate" */
#define RILL_ETLS_CONFIG (-10410)    /**< "tls: failed to load certificate or key" */
#define RILL_ETLS_PROTOCOL (-10411)  /**< "local error: tls: bad record MAC" and other
                                        malformed input */
#define RILL_ETLS_REMOTE_BAD_CERT (-10412) /**< "remote error: tls: bad certificate": the
                                              peer refused our certificate */
#define RILL_ETLS_NO_ALPN (-10413)   /**< "tls: no application protocol" in common */
#define RILL_ETLS_VERSION (-10414)   /**< "tls: protocol version not supported" */
/** @} */

/** Whether `e` is one of the TLS failures above. */
#define RILL_IS_TLS_ERROR(e) ((e) <= -10400 && (e) > -10500)

/** Coordination between fibers (rill/chan.h) (-10200 ... -10299). @{ */
#define RILL_EWRONGTHREAD (-10201)  /**< a handle used from a thread it does not belong to */
#define RILL_ECTX_CANCELED (-10202) /**< Go's context.Canceled: "context canceled" */
#define RILL_ECTX_DEADLINE (-10203) /**< Go's context.DeadlineExceeded: "context deadline exceeded" */
/** @} */

/** A human-readable text for a code ("connection refused", "i/o timeout").
 * Never NULL; 0 gives "success". rill's own codes and the errnos a network
 * program meets most have Go's texts. Any other operating-system code (-1 to
 * -4095: -EOPNOTSUPP, -EIO, -ENOBUFS ...) gives the C library's text, its
 * first letter lower-cased ("operation not supported"), held in a buffer of
 * the calling thread that the next rill_strerror() call on that thread
 * reuses: copy it to keep it. Every other code gives "unknown error".
 * Thread-safe. */
RILL_API const char *rill_strerror(int err);

/** The code's symbolic name ("ECONNREFUSED", "ETIMEOUT", "EOPNOTSUPP"); never
 * NULL; 0 gives "OK". An operating-system code without a name here gives
 * "E<number>" ("E133" for -133), held like rill_strerror()'s texts in a
 * buffer of the calling thread reused by its next rill_err_name() call.
 * Other codes give "UNKNOWN". Thread-safe. */
RILL_API const char *rill_err_name(int err);

#ifdef __cplusplus
}
#endif

#endif /* RILL_ERROR_H */
