/* rill — symbol visibility. Only declarations marked RILL_API are exported
 * from the shared library; everything else is built hidden. */
#ifndef RILL_EXPORT_H
#define RILL_EXPORT_H

#if defined(RILL_STATIC)
#define RILL_API
#elif defined(_WIN32)
#define RILL_API __declspec(dllexport)
#elif defined(__GNUC__)
#define RILL_API __attribute__((visibility("default")))
#else
#define RILL_API
#endif

#endif /* RILL_EXPORT_H */
