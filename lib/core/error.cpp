// Names and texts for error codes. rill's own codes read like Go's errors
// ("i/o timeout", "use of closed network connection") so that programs
// written both ways print the same thing.
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
    {RILL_EDNS_NOHOST, "EDNS_NOHOST", "no such host"},
    {RILL_EDNS_SERVFAIL, "EDNS_SERVFAIL", "server misbehaving"},
    {RILL_EDNS_REFUSED, "EDNS_REFUSED", "server refused the query"},
    {RILL_EDNS_TIMEOUT, "EDNS_TIMEOUT", "DNS query timed out"},
    {RILL_EDNS_BADNAME, "EDNS_BADNAME", "invalid host name"},
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

const code_info *find(int err) {
  for (const code_info &c : own_codes)
    if (c.code == err)
      return &c;
  for (const code_info &c : errno_codes)
    if (c.code == err)
      return &c;
  return nullptr;
}

}  // namespace

extern "C" const char *rill_strerror(int err) {
  if (err == 0)
    return "success";
  if (const code_info *c = find(err))
    return c->text;
  return "unknown error";
}

extern "C" const char *rill_err_name(int err) {
  if (err == 0)
    return "OK";
  if (const code_info *c = find(err))
    return c->name;
  return "UNKNOWN";
}
