/** @file
 * rill — a callback event loop with Go's network semantics.
 *
 * The umbrella header: version macros and every module header. */
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
