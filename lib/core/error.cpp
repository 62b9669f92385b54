// Names and texts for error codes. rill's own codes read like Go's errors
// ("i/o timeout", "use of closed network connection") so that programs
// written both ways print the same thing.
#include <cstdio>
#include <cstring>

#include "rill/error.h"

namespace {

struct code_info {
  int code;
  const char *name;
  const char *text;
};

const code_info own_codes[] = {
    {RILL_EOF, "EOF", "EOF"},
    {RILL_ECLOSED, "ECLOSED", "use of closed network connection"},
    {RILL_ETIMEOUT, "ETIMEOUT", "i/o timeout"},
    {RILL_ECANCELED, "ECANCELED", "operation was canceled"},
    {RILL_ENOTFIBER, "ENOTFIBER", "blocking call outside a fiber"},
    {RILL_ENEEDDNS, "ENEEDDNS", "host name needs DNS resolution"},
    {RILL_EBACKEND, "EBACKEND", "event backend not available"},
    {RILL_ENOTSUP, "ENOTSUP", "not supported"},
    {RILL_ETLS_UNKNOWN_AUTHORITY, "ETLS_UNKNOWN_AUTHORITY", "x509: certificate signed by unknown authority"},
    {RILL_ETLS_HOSTNAME, "ETLS_HOSTNAME", "x509: certificate is not valid for this host"},
    {RILL_ETLS_EXPIRED, "ETLS_EXPIRED", "x509: certificate has expired or is not yet valid"},
    {RILL_ETLS_BAD_CERT, "ETLS_BAD_CERT", "x509: certificate verification failed"},
    {RILL_ETLS_HANDSHAKE, "ETLS_HANDSHAKE", "remote error: tls: handshake failure"},
    {RILL_ETLS_NOT_TLS, "ETLS_NOT_TLS", "tls: first record does not look like a TLS handshake"},
    {RILL_ETLS_RENEGOTIATION, "ETLS_RENEGOTIATION", "tls: renegotiation is not supported"},
    {RILL_ETLS_TRUNCATED, "ETLS_TRUNCATED", "unexpected EOF"},
    {RILL_ETLS_CERT_REQUIRED, "ETLS_CERT_REQUIRED", "tls: client didn't provide a certificate"},
    {RILL_ETLS_CONFIG, "ETLS_CONFIG", "tls: failed to load certificate or key"},
    {RILL_ETLS_PROTOCOL, "ETLS_PROTOCOL", "local error: tls: bad record MAC"},
    {RILL_ETLS_REMOTE_BAD_CERT, "ETLS_REMOTE_BAD_CERT", "remote error: tls: bad certificate"},
    {RILL_ETLS_NO_ALPN, "ETLS_NO_ALPN", "tls: no application protocol"},
    {RILL_ETLS_VERSION, "ETLS_VERSION", "tls: protocol version not supported"},
    {RILL_EDNS_NOHOST, "EDNS_NOHOST", "no such host"},
    {RILL_EDNS_SERVFAIL, "EDNS_SERVFAIL", "server misbehaving"},
    // Go answers a REFUSED rcode as it answers SERVFAIL.
    {RILL_EDNS_REFUSED, "EDNS_REFUSED", "server misbehaving"},
    {RILL_EDNS_TIMEOUT, "EDNS_TIMEOUT", "i/o timeout"},
    {RILL_EDNS_BADNAME, "EDNS_BADNAME", "invalid host name"},
    {RILL_EDNS_UNREACHABLE, "EDNS_UNREACHABLE", "connection refused"},
    {RILL_EADDR_NOPORT, "EADDR_NOPORT", "missing port in address"},
    {RILL_EADDR_COLONS, "EADDR_COLONS", "too many colons in address"},
    {RILL_EADDR_NOBRACKET, "EADDR_NOBRACKET", "missing ']' in address"},
    {RILL_EADDR_OPENBRACKET, "EADDR_OPENBRACKET", "unexpected '[' in address"},
    {RILL_EADDR_CLOSEBRACKET, "EADDR_CLOSEBRACKET", "unexpected ']' in address"},
    {RILL_EADDR_PORT, "EADDR_PORT", "invalid port"},
    {RILL_EADDR_SERVICE, "EADDR_SERVICE", "unknown port"},
    {RILL_EADDR_MISSING, "EADDR_MISSING", "missing address"},
    {RILL_EADDR_FAMILY, "EADDR_FAMILY", "no suitable address found"},
    {RILL_EUNKNOWN_NETWORK, "EUNKNOWN_NETWORK", "unknown network"},
    {RILL_EWRONGTHREAD, "EWRONGTHREAD", "handle used from another thread"},
    {RILL_ECTX_CANCELED, "ECTX_CANCELED", "context canceled"},
    {RILL_ECTX_DEADLINE, "ECTX_DEADLINE", "context deadline exceeded"},
};

// Go prints the lower-case C library texts for the errors a network program
// meets most; keep those identical so outputs compare equal.
const code_info errno_codes[] = {
    {-EPIPE, "EPIPE", "broken pipe"},
    {-ECONNREFUSED, "ECONNREFUSED", "connection refused"},
    {-ECONNRESET, "ECONNRESET", "connection reset by peer"},
    {-ECONNABORTED, "ECONNABORTED", "software caused connection abort"},
    {-ETIMEDOUT, "ETIMEDOUT", "connection timed out"},
    {-EADDRINUSE, "EADDRINUSE", "address already in use"},
    {-EADDRNOTAVAIL, "EADDRNOTAVAIL", "cannot assign requested address"},
    {-EAFNOSUPPORT, "EAFNOSUPPORT", "address family not supported by protocol"},
    {-ENETUNREACH, "ENETUNREACH", "network is unreachable"},
    {-EHOSTUNREACH, "EHOSTUNREACH", "no route to host"},
    {-EINVAL, "EINVAL", "invalid argument"},
    {-ENOMEM, "ENOMEM", "cannot allocate memory"},
    {-EBADF, "EBADF", "bad file descriptor"},
    {-EEXIST, "EEXIST", "file exists"},
    {-EBUSY, "EBUSY", "device or resource busy"},
    {-EAGAIN, "EAGAIN", "resource temporarily unavailable"},
    {-ENOENT, "ENOENT", "no such file or directory"},
    {-ENOSYS, "ENOSYS", "function not implemented"},
    {-EMFILE, "EMFILE", "too many open files"},
    {-ENFILE, "ENFILE", "too many open files in system"},
    {-EINTR, "EINTR", "interrupted system call"},
    {-EPERM, "EPERM", "operation not permitted"},
    {-EACCES, "EACCES", "permission denied"},
    {-ENOTCONN, "ENOTCONN", "transport endpoint is not connected"},
    {-EISCONN, "EISCONN", "transport endpoint is already connected"},
    {-EINPROGRESS, "EINPROGRESS", "operation now in progress"},
    {-EALREADY, "EALREADY", "operation already in progress"},
};

// Names for more errnos a network program meets; their texts come from the
// C library (lower-cased like Go's). EWOULDBLOCK and ENOTSUP are the same
// numbers as EAGAIN and EOPNOTSUPP on Linux, so they are not listed twice.
const code_info errno_names[] = {
    {-EOPNOTSUPP, "EOPNOTSUPP", nullptr},   {-EIO, "EIO", nullptr},
    {-ENOBUFS, "ENOBUFS", nullptr},         {-ENOTSOCK, "ENOTSOCK", nullptr},
    {-EDESTADDRREQ, "EDESTADDRREQ", nullptr}, {-EMSGSIZE, "EMSGSIZE", nullptr},
    {-EPROTOTYPE, "EPROTOTYPE", nullptr},   {-ENOPROTOOPT, "ENOPROTOOPT", nullptr},
    {-EPROTONOSUPPORT, "EPROTONOSUPPORT", nullptr}, {-EPROTO, "EPROTO", nullptr},
    {-ENETDOWN, "ENETDOWN", nullptr},       {-ENETRESET, "ENETRESET", nullptr},
    {-ESHUTDOWN, "ESHUTDOWN", nullptr},     {-EHOSTDOWN, "EHOSTDOWN", nullptr},
    {-ENOSPC, "ENOSPC", nullptr},           {-EROFS, "EROFS", nullptr},
    {-ENOTDIR, "ENOTDIR", nullptr},         {-EISDIR, "EISDIR", nullptr},
    {-ENAMETOOLONG, "ENAMETOOLONG", nullptr}, {-ELOOP, "ELOOP", nullptr},
    {-EFAULT, "EFAULT", nullptr},           {-ENXIO, "ENXIO", nullptr},
    {-ENODEV, "ENODEV", nullptr},           {-ESPIPE, "ESPIPE", nullptr},
    {-ERANGE, "ERANGE", nullptr},           {-EOVERFLOW, "EOVERFLOW", nullptr},
    {-ENOTEMPTY, "ENOTEMPTY", nullptr},     {-ENOTTY, "ENOTTY", nullptr},
    {-ESRCH, "ESRCH", nullptr},             {-ECHILD, "ECHILD", nullptr},
    {-E2BIG, "E2BIG", nullptr},             {-EDEADLK, "EDEADLK", nullptr},
    {-ETXTBSY, "ETXTBSY", nullptr},
    {-EXDEV, "EXDEV", nullptr},             {-EDOM, "EDOM", nullptr},
};

// Operating-system codes: what the kernel can return (Linux's MAX_ERRNO).
constexpr int max_errno = 4095;

bool is_errno_code(int err) { return err < 0 && err >= -max_errno; }

// The C library's text for errno `e`, lower-cased at the start like the
// texts above, in `buf`. strerror_r comes in two flavours: the XSI one
// fills `buf` and returns an int, the GNU one returns the text (which may
// or may not be `buf`); the overloads below take whichever this C library
// declares.
[[maybe_unused]] const char *strerror_result(int rc, char *buf) { return rc == 0 ? buf : nullptr; }
[[maybe_unused]] const char *strerror_result(const char *text, char *) { return text; }

const char *library_text(int e, char *buf, size_t size) {
  buf[0] = '\0';
  const char *text = strerror_result(strerror_r(e, buf, size), buf);
  if (!text || !text[0])
    std::snprintf(buf, size, "errno %d", e);
  else if (text != buf)
    std::snprintf(buf, size, "%s", text);
  if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
    buf[0] = static_cast<char>(buf[0] - 'A' + 'a');  // "Operation ..." but not "I/O ..."
  return buf;
}

const code_info *find(int err) {
  for (const code_info &c : own_codes)
    if (c.code == err)
      return &c;
  for (const code_info &c : errno_codes)
    if (c.code == err)
      return &c;
  for (const code_info &c : errno_names)
    if (c.code == err)
      return &c;
  return nullptr;
}

}  // namespace

extern "C" const char *rill_strerror(int err) {
  if (err == 0)
    return "success";
  const code_info *c = find(err);
  if (c && c->text)
    return c->text;
  if (is_errno_code(err)) {
    // A per-thread buffer keeps this thread-safe; see error.h for how long
    // the text stays valid.
    static thread_local char buf[128];
    return library_text(-err, buf, sizeof buf);
  }
  return "unknown error";
}

extern "C" const char *rill_err_name(int err) {
  if (err == 0)
    return "OK";
  if (const code_info *c = find(err))
    return c->name;
  if (is_errno_code(err)) {
    static thread_local char buf[16];
    std::snprintf(buf, sizeof buf, "E%d", -err);
    return buf;
  }
  return "UNKNOWN";
}
