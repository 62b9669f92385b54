/** @file
 * rill — a callback event loop with Go's network semantics.
 *
 * The umbrella header: version macros and every module header.
 *
 * One vocabulary, the same in every header:
 *  - Functions are named after the handle type they act on, handle first:
 *    rill_timer_start(timer, ...), rill_dns_query_cancel(query).
 *  - `_free` releases a handle at once; no callback of it runs afterwards.
 *  - `_close` ends a connection or a listener. In the callback API it is
 *    asynchronous: the handle stays valid until its on_close, the last
 *    callback it makes. In the fiber facade it is Go's Close (parked
 *    fibers wake with RILL_ECLOSED) and the handle stays valid until
 *    `_free`. rill_chan_close() is Go's close(ch).
 *  - `_cancel` ends an operation in flight (a dial, a query, a context).
 *  - `_start` / `_stop` switch activity on and off and can be repeated;
 *    stopping is never final.
 *  - Output buffers come last, as `buf, size`, and formatters behave as
 *    snprintf.
 *  - Settings are `_config` structs: zero-initialise one and set what you
 *    need; zero means the default (Go's, where Go has one).
 *  - Times and durations are uint64_t nanoseconds (RILL_MSEC and friends),
 *    points in time on rill_time_now()'s monotonic clock.
 *  - Errors are negative return values: -errno or a RILL_E* code
 *    (rill/error.h), worded by rill_strerror(). */
#ifndef RILL_H
#define RILL_H

/** The version of these headers, as numbers and as a string. @{ */
#define RILL_VERSION_MAJOR 0
#define RILL_VERSION_MINOR 1
#define RILL_VERSION_PATCH 0
#define RILL_VERSION_STRING "0.1.0"
/** @} */

#include "rill/export.h"
#include "rill/error.h"
#include "rill/base.h"
#include "rill/io.h"
#include "rill/timer.h"
#include "rill/signal.h"
#include "rill/net.h"
#include "rill/dns.h"
#include "rill/fiber.h"
#include "rill/chan.h"
#include "rill/blocking.h"
#include "rill/pipe.h"
#include "rill/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The library's version at run time, as (major << 16 | minor << 8 | patch). */
RILL_API unsigned rill_version(void);
/** The library's version at run time, as a string ("0.1.0"). */
RILL_API const char *rill_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* RILL_H */
